"""retryStrategy: each attempt is its own child of a Retry node; only the last attempt's outputs count."""

from __future__ import annotations

import os
import re
from typing import Any

from treadle.errors import TreadleError
from treadle.services.scheduler.engine.core import EngineBase
from treadle.services.scheduler.engine.model import FULFILLED_OK, Node, NodePhase
from treadle.services.scheduler.engine.resolve import Scope
from treadle.spec.durations import parse_duration
from treadle.spec.template import substitute

# Messages of errors worth retrying under OnTransientError; TRANSIENT_ERROR_PATTERN adds more.
TRANSIENT = re.compile(
    r"connection reset|connection refused|i/o timeout|timed out|temporarily unavailable|unavailable|"
    r"tls handshake timeout|too many requests|exceeded quota|EOF",
    re.IGNORECASE,
)


def is_transient(message: str) -> bool:
    extra = os.environ.get("TRANSIENT_ERROR_PATTERN")
    return bool(TRANSIENT.search(message) or (extra and re.search(extra, message)))


class RetryMixin(EngineBase):
    def _next_attempt(self, retry: Node) -> None:
        n = len(retry.children)
        retry.progress.pop("waitingUntil", None)
        self.nodes.put(retry)
        self._execute_template(
            f"{retry.name}({n})", f"{retry.display_name}({n})", retry.template_name, retry.inputs,
            boundary=retry.boundary_id, parent=retry.id, flags={"retries": n},
        )  # fmt: skip

    def _retry_child_done(self, retry: Node, attempt: Node) -> None:
        if attempt.phase in FULFILLED_OK:
            retry.outputs = attempt.outputs
            self._finish(retry, attempt.phase, attempt.message)
            return
        try:
            delay = self._retry_delay(retry, attempt)
        except TreadleError as exc:
            retry.outputs = attempt.outputs
            self._finish(retry, NodePhase.ERROR, f"retryStrategy of {retry.name}: {exc}")
            return
        if delay is None:
            retry.outputs = attempt.outputs
            self._finish(retry, attempt.phase, attempt.message)
        elif delay > 0:
            retry.progress["waitingUntil"] = self.now() + delay
            self.nodes.put(retry)
            self._arm(retry.id, retry.progress["waitingUntil"])
        else:
            self._next_attempt(retry)

    def _retry_delay(self, retry: Node, attempt: Node) -> float | None:
        """Seconds to wait before the next attempt, or None when no retry is due."""
        strategy: dict[str, Any] = self.templates[retry.template_name].get("retryStrategy") or {}
        scope = Scope(self._global, retry.inputs, global_names=self._global_names)
        retries_done = len(retry.children) - 1
        if strategy.get("limit") not in (None, ""):
            limit = int(substitute(str(strategy["limit"]), scope.lookup))
            if retries_done >= limit:
                return None
        # Since Argo 3.5 an expression alone decides which failures are retried.
        policy = strategy.get("retryPolicy") or ("Always" if strategy.get("expression") else "OnFailure")
        if not _policy_allows(policy, attempt):
            return None
        if strategy.get("expression") and not self._retry_expression(strategy["expression"], attempt, scope):
            return None
        backoff = strategy.get("backoff") or {}
        delay = 0.0
        if backoff.get("duration"):
            base = parse_duration(substitute(str(backoff["duration"]), scope.lookup), "retryStrategy.backoff.duration")
            factor = float(substitute(str(backoff.get("factor") or "1"), scope.lookup))
            delay = base * factor**retries_done
            if backoff.get("cap"):
                delay = min(delay, parse_duration(str(backoff["cap"]), "retryStrategy.backoff.cap"))
        if backoff.get("maxDuration"):
            limit_s = parse_duration(substitute(str(backoff["maxDuration"]), scope.lookup), "backoff.maxDuration")
            if self.now() + delay - (retry.started_at or self.now()) > limit_s:
                return None
        return delay

    def _retry_expression(self, expression: str, attempt: Node, scope: Scope) -> bool:
        from treadle.expr import ExpressionError, env_from_flat, evaluate

        duration = (attempt.finished_at or self.now()) - (attempt.started_at or self.now())
        exit_code = attempt.outputs.get("exitCode")
        # Argo's variables are strings: `asInt(lastRetry.exitCode) > 1`.
        flat = {
            **scope.flat(),
            "lastRetry.exitCode": str(exit_code) if exit_code not in (None, "") else "-1",
            "lastRetry.status": attempt.phase,
            "lastRetry.duration": f"{duration:.3f}".rstrip("0").rstrip("."),
            "lastRetry.message": attempt.message,
        }
        result = evaluate(expression, env_from_flat(flat))
        if not isinstance(result, bool):
            raise ExpressionError(f"retryStrategy.expression {expression!r} gave {result!r}, not true or false")
        return result


def _policy_allows(policy: str, attempt: Node) -> bool:
    if policy == "Always":
        return attempt.phase in (NodePhase.FAILED, NodePhase.ERROR)
    if policy == "OnError":
        return attempt.phase == NodePhase.ERROR
    if policy == "OnTransientError":
        return attempt.phase in (NodePhase.FAILED, NodePhase.ERROR) and is_transient(attempt.message)
    return attempt.phase == NodePhase.FAILED  # OnFailure, the default
