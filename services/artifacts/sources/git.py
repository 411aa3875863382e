"""An input artifact checked out from a git repository, with the ``git`` command.

The clone keeps its ``.git`` directory, as Argo's does. ``revision`` may be a
commit, a tag or a branch; with ``depth`` the clone is shallow and a revision
outside the default branch's recent history is fetched on its own.

git runs with no system or user configuration, no terminal prompts, no
credential helpers and no ``ext::`` transport. A user name and password from
secrets reach it through a GIT_ASKPASS script reading the child's own
environment; they never appear on a command line, and are scrubbed from any
git output quoted in an error.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
from pathlib import Path
from urllib.parse import urlsplit

from treadle.archive import resolve_inside
from treadle.errors import FailedPrecondition, InvalidSpec, NotFound, PermissionDenied, Unavailable
from treadle.secrets import SecretFiles, redact
from treadle.workflow.v1 import workflow_pb2

from .describe import redact_url

_SCHEMES = ("https", "http", "git", "file")
_ASKPASS = """#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "$TREADLE_GIT_USERNAME" ;;
  *) printf '%s\\n' "$TREADLE_GIT_PASSWORD" ;;
esac
"""
_NOT_FOUND = re.compile(
    r"not found|does not exist|does not appear to be a git repository|couldn't find remote ref", re.I
)
_DENIED = re.compile(r"authentication failed|could not read username|permission denied|\b403\b", re.I)


async def git_checkout(
    spec: workflow_pb2.GitArtifact, sub_path: str, secrets: SecretFiles, workdir: Path, *, timeout: float
) -> Path:
    """Check spec's revision out under workdir; return the checkout, or sub_path inside it."""
    shown = redact_url(spec.repo)
    _check_repo_url(spec.repo, shown)
    git = _Git(spec, secrets, workdir, timeout, shown)
    dest = workdir / "checkout"
    clone = ["clone", "--quiet", "--no-checkout"]
    if spec.depth:
        clone += ["--depth", str(spec.depth)]
    if spec.single_branch:
        clone.append("--single-branch")
    if spec.branch:
        clone += ["--branch", spec.branch]
    await git.run([*clone, "--", spec.repo, str(dest)], what="clone")
    await git.checkout(dest, spec.revision)
    if not spec.disable_submodules and (dest / ".gitmodules").exists():
        depth = ["--depth", str(spec.depth)] if spec.depth else []
        await git.run(["-C", str(dest), "submodule", "update", "--init", "--recursive", *depth], what="submodules")
    return inside(dest, sub_path) if sub_path else dest


def inside(root: Path, sub_path: str) -> Path:
    """root/sub_path, refusing a path that leaves root (through '..', an absolute path, or a symlink)."""
    try:
        return resolve_inside(root, sub_path)
    except FileNotFoundError:
        raise NotFound("path in the git checkout", sub_path) from None


def _check_repo_url(repo: str, shown: str) -> None:
    scheme = urlsplit(repo).scheme if "://" in repo else ""
    if repo.startswith("-") or scheme not in _SCHEMES:
        raise InvalidSpec(
            f"{shown!r} is not a repository URL treadle can fetch; use {', '.join(s + '://' for s in _SCHEMES)}",
            field="git.repo",
        )


class _Git:
    def __init__(
        self, spec: workflow_pb2.GitArtifact, secrets: SecretFiles, workdir: Path, timeout: float, shown: str
    ) -> None:
        self._spec = spec
        self._timeout = timeout
        self._shown = shown
        home = workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        self._secret_values: list[str] = []
        self._env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "LANG": "C",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
        }
        if spec.HasField("username_secret") or spec.HasField("password_secret"):
            self._add_credentials(secrets, workdir)

    def _add_credentials(self, secrets: SecretFiles, workdir: Path) -> None:
        user = self._spec.username_secret
        password = self._spec.password_secret
        username = secrets.read(user.name, user.key, field="git.usernameSecret") if user.name else ""
        secret = secrets.read(password.name, password.key, field="git.passwordSecret") if password.name else ""
        askpass = workdir / "askpass.sh"
        askpass.write_text(_ASKPASS)
        askpass.chmod(stat.S_IRWXU)
        self._env |= {"GIT_ASKPASS": str(askpass), "TREADLE_GIT_USERNAME": username, "TREADLE_GIT_PASSWORD": secret}
        self._secret_values += [username, secret]

    async def checkout(self, dest: Path, revision: str) -> None:
        target = ["-C", str(dest), "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach"]
        if not revision:
            await self.run([*target, "HEAD"], what="checkout")
            return
        for candidate in (revision, f"origin/{revision}"):
            if await self.run([*target, candidate, "--"], what="checkout", check=False):
                return
        depth = ["--depth", str(self._spec.depth)] if self._spec.depth else []
        fetched = await self.run(
            ["-C", str(dest), "fetch", "--quiet", *depth, "origin", "--", revision], what="fetch", check=False
        )
        if not fetched:
            raise NotFound("git revision", f"{self._shown} at {revision}")
        await self.run([*target, "FETCH_HEAD", "--"], what="checkout")

    async def run(self, args: list[str], *, what: str, check: bool = True) -> bool:
        """Run git; True on success. A failure raises (check) or returns False."""
        process = await asyncio.create_subprocess_exec(
            *["git", "-c", "credential.helper=", "-c", "protocol.ext.allow=never", *args],
            env=self._env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), self._timeout)
        except TimeoutError:
            await _kill(process)
            raise Unavailable(f"git {what} of {self._shown} took longer than {self._timeout:g}s") from None
        except BaseException:
            await _kill(process)
            raise
        if process.returncode == 0:
            return True
        if not check:
            return False
        raise self._error(what, stderr.decode("utf-8", "replace"))

    def _error(self, what: str, stderr: str) -> Exception:
        # Classify git's words, not the repository's address: a path may hold "403" or "not found" too.
        said = redact(stderr, self._secret_values).replace(self._spec.repo, "<repository>")
        path = urlsplit(self._spec.repo).path
        if path:  # git names local repositories by their path
            said = said.replace(path, "<repository>")
        lines = [line for line in said.splitlines() if line.strip()]
        detail = (lines[-1] if lines else "no output").replace("<repository>", self._shown).strip()
        if _DENIED.search(said):
            return PermissionDenied(f"git {what} of {self._shown} was refused: {detail}")
        if _NOT_FOUND.search(said):
            return NotFound("git repository", self._shown)
        return FailedPrecondition(f"git {what} of {self._shown} failed: {detail}", subject=self._shown)


async def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
        await process.wait()
