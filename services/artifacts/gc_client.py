"""Running an artifact GC plan against ArtifactService: what the scheduler and admission call.

Each repository's DeleteWorkflowArtifacts call is repeated until the service
reports it complete, every call with its own deadline; the whole run has an
overall deadline too. Nothing here retries a failed call: the caller decides
(GC is idempotent, so running the plan again later is always safe).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc

from treadle.artifacts.v1 import artifacts_pb2
from treadle.errors import Unavailable
from treadle.grpcutil.status import error_from_rpc

from .gc_plan import GcPlan

if TYPE_CHECKING:
    from treadle.artifacts.v1.artifacts_pb2_grpc import ArtifactServiceAsyncStub

CALL_TIMEOUT = 30.0
RUN_TIMEOUT = 600.0


@dataclass
class GcOutcome:
    deleted: int = 0
    kept_keys: list[str] = field(default_factory=list)


async def run_artifact_gc(
    stub: ArtifactServiceAsyncStub,
    plan: GcPlan,
    *,
    call_timeout: float = CALL_TIMEOUT,
    run_timeout: float = RUN_TIMEOUT,
    metadata: tuple[tuple[str, str], ...] = (),
) -> GcOutcome:
    """Carry plan out. Raises the domain error of a failed call, or Unavailable when run_timeout passes."""
    outcome = GcOutcome()
    deadline = time.monotonic() + run_timeout
    for call in plan.calls:
        request = artifacts_pb2.DeleteWorkflowArtifactsRequest(
            workflow=plan.workflow,
            repository=call.repository,
            keys=call.keys,
            all_under_prefix=call.all_under_prefix,
            keep_keys=call.keep_keys,
        )
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Unavailable(f"artifact GC of workflow {plan.workflow!r} did not finish in {run_timeout:g}s")
            try:
                response = await stub.DeleteWorkflowArtifacts(
                    request, timeout=min(call_timeout, left), metadata=metadata
                )
            except grpc.aio.AioRpcError as exc:
                raise error_from_rpc(exc) from None
            outcome.deleted += response.deleted
            outcome.kept_keys += [k for k in response.kept_keys if k not in outcome.kept_keys]
            if response.complete:
                break
    return outcome
