"""Why the executor could not run a step. Each one ends the step with phase ERROR."""

from __future__ import annotations

from treadle.errors import TreadleError


class ExecutorError(TreadleError):
    """The executor could not run the step; str() is the message reported with phase ERROR."""


class SandboxError(ExecutorError):
    """The step's private filesystem view could not be set up."""
