"""treadle's in-step executor: init, main and wait, as Argo's init and wait containers around main.

- `treadle.executor.init`: fetch the step's context, stage its script and input artifacts.
- `treadle.executor.main`: run the command in its sandbox (`treadle.executor.sandbox`).
- `treadle.executor.wait`: collect parameters, upload artifacts and the log, build the report.
- `treadle.executor.step`: one attempt end to end, ending with ReportStepOutputs.
- `treadle.executor.host`: the long-lived process the local runtime drives (`python -m treadle.executor.host`).
- ``python -m treadle.executor run``: one step per process, for runtimes that start an executor per step
  (Kubernetes). The Docker runtime calls init and wait itself, beside the engine (docs/docker-runtime.md).

Names are imported lazily: the fork server imports this package and must stay small.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from treadle.executor.errors import ExecutorError, SandboxError
    from treadle.executor.launch import StepLaunch
    from treadle.executor.sandbox import SandboxMode
    from treadle.executor.step import StepOutcome, StepRunner

_EXPORTS = {
    "ExecutorError": "treadle.executor.errors",
    "SandboxError": "treadle.executor.errors",
    "SandboxMode": "treadle.executor.sandbox",
    "StepLaunch": "treadle.executor.launch",
    "StepOutcome": "treadle.executor.step",
    "StepRunner": "treadle.executor.step",
}

__all__ = ["ExecutorError", "SandboxError", "SandboxMode", "StepLaunch", "StepOutcome", "StepRunner"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
