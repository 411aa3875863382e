"""Where a step's files live on the host, and how the step's paths map onto them.

A step attempt owns ``<steps_dir>/<workflow>/<node_id>-<attempt>/``:

    tmp/        the command's /tmp (bind-mounted there by the sandbox); inputs
                under /tmp are staged here and outputs under /tmp read from here
    tmp/.treadle/script   a script template's source, at /tmp/.treadle/script
    staging/    archives on their way in or out
    main.log    the command's combined stdout and stderr

The directory is removed when the step is done; `workflow_dir` is what a
runtime removes when it cleans up a workflow.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from treadle.executor.sandbox import PRIVATE_TMP

SCRIPT_DIR_NAME = ".treadle"


def safe_name(name: str) -> str:
    """A single, reversible path component for a workflow name or node id."""
    quoted = quote(name, safe="") or "%00"
    return "%2E" + quoted[1:] if quoted.startswith(".") else quoted


def workflow_dir(steps_dir: Path, workflow: str) -> Path:
    return steps_dir / safe_name(workflow)


@dataclass(frozen=True)
class StepLayout:
    root: Path
    # True when the command runs in a sandbox whose /tmp is `tmp`.
    isolated: bool

    @classmethod
    def for_step(cls, steps_dir: Path, workflow: str, node_id: str, attempt: int, *, isolated: bool) -> StepLayout:
        return cls(workflow_dir(steps_dir, workflow) / f"{safe_name(node_id)}-{attempt}", isolated)

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def staging(self) -> Path:
        return self.root / "staging"

    @property
    def log_file(self) -> Path:
        return self.root / "main.log"

    @property
    def tmp_view(self) -> str:
        """The command's /tmp, as the command sees it."""
        return PRIVATE_TMP if self.isolated else str(self.tmp)

    @property
    def script_path(self) -> str:
        """Where the command finds a script template's source."""
        return posixpath.join(self.tmp_view, SCRIPT_DIR_NAME, "script")

    def host_path(self, path: str, *, cwd: str | None = None) -> Path:
        """The host path of a path as the command sees it (relative paths start at cwd, else /tmp).

        Only /tmp is private: any other path is the host's own.
        """
        seen = posixpath.normpath(posixpath.join(cwd or self.tmp_view, path))
        if seen.startswith("//"):
            seen = "/" + seen.lstrip("/")
        if self.isolated and (seen == PRIVATE_TMP or seen.startswith(PRIVATE_TMP + "/")):
            return self.tmp / posixpath.relpath(seen, PRIVATE_TMP)
        return Path(seen)

    def create(self) -> None:
        """Make a fresh directory (whatever an earlier, crashed run left is removed first)."""
        if self.root.exists():
            self.remove()
        self.tmp.mkdir(parents=True)
        os.chmod(self.tmp, 0o1777)  # like /tmp itself
        self.staging.mkdir()

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
