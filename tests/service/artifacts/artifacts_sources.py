"""Real outside sources for import tests: an HTTP server on loopback, and local git repositories."""

from __future__ import annotations

import base64
import contextlib
import http.server
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class HttpFiles:
    """What the server serves and who may fetch it; requests records each request's headers."""

    files: dict[str, bytes] = field(default_factory=dict)
    basic: tuple[str, str] | None = None  # (user, password) required for /private/...
    bearer: str = ""  # token required for /token/...
    redirects: dict[str, str] = field(default_factory=dict)  # path -> absolute URL
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)


@contextlib.contextmanager
def http_server(content: HttpFiles) -> Iterator[str]:
    """A stdlib HTTP server in a thread on a free loopback port; yields its base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            content.requests.append((path, dict(self.headers.items())))
            if path in content.redirects:
                self.send_response(302)
                self.send_header("Location", content.redirects[path])
                self.end_headers()
                return
            if path.startswith("/private/") and content.basic is not None:
                expected = "Basic " + base64.b64encode(":".join(content.basic).encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self.send_error(401)
                    return
            if path.startswith("/token/") and self.headers.get("Authorization") != f"Bearer {content.bearer}":
                self.send_error(403)
                return
            body = content.files.get(path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def git(*args: str, cwd: Path | None = None) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(cwd or Path.cwd()),
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@dataclass(frozen=True)
class GitRepo:
    url: str  # file:// URL of the bare repository
    first: str  # commit with README (v1 tag)
    second: str  # commit adding src/tool.sh (main's tip)
    feature: str  # tip of the "feature" branch


def bare_git_repository(root: Path) -> GitRepo:
    """A bare repository with two commits on main, a v1 tag, and a feature branch, pushed from a work tree."""
    root.mkdir(parents=True, exist_ok=True)
    bare = root / "origin.git"
    work = root / "work"
    git("init", "--bare", "--initial-branch=main", str(bare), cwd=root)
    git("init", "--initial-branch=main", str(work), cwd=root)
    (work / "README").write_text("v1\n")
    git("add", "README", cwd=work)
    git("commit", "-m", "first", cwd=work)
    first = git("rev-parse", "HEAD", cwd=work)
    git("tag", "v1", cwd=work)
    (work / "src").mkdir()
    (work / "src" / "tool.sh").write_text("#!/bin/sh\necho tool\n")
    (work / "src" / "tool.sh").chmod(0o755)
    (work / "src" / "link").symlink_to("tool.sh")
    (work / "README").write_text("v2\n")
    git("add", "-A", cwd=work)
    git("commit", "-m", "second", cwd=work)
    second = git("rev-parse", "HEAD", cwd=work)
    git("checkout", "-b", "feature", cwd=work)
    (work / "FEATURE").write_text("f\n")
    git("add", "FEATURE", cwd=work)
    git("commit", "-m", "feature", cwd=work)
    feature = git("rev-parse", "HEAD", cwd=work)
    git("remote", "add", "origin", bare.as_uri(), cwd=work)
    git("push", "origin", "main", "feature", "--tags", cwd=work)
    return GitRepo(bare.as_uri(), first, second, feature)
