"""Large parameter values and results, passed by reference instead of inline.

Argo cuts ``outputs.result`` at 256 KB and Tekton results at 4 KB; treadle
cuts nothing. A value longer than the inline limit leaves the step as a blob
in the artifact repository, and its report carries a StoredArtifact reference
(``Parameter.value_ref``, ``Outputs.result_ref``) instead of the text:

- the executor's wait phase calls ``spill_large_values`` on the outputs it
  reports;
- whoever needs the text (the scheduler, before handing a completed step to
  the engine) calls ``resolve_large_values``, which puts the exact text back
  and clears the references.

The blob holds the value's UTF-8 bytes, and round-trips them exactly: both
transfers are checked by SHA-256. Blob artifact names (``outputs.result``,
``outputs.parameters.NAME``) contain a dot, which Argo artifact names cannot,
so they never collide with a step's own artifacts; they live under the
workflow's key prefix and go with its artifact GC.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from treadle.artifacts.v1 import artifacts_pb2
from treadle.workflow.v1 import workflow_pb2

from .client import download_bytes, upload_bytes

if TYPE_CHECKING:
    from treadle.artifacts.v1.artifacts_pb2_grpc import ArtifactServiceAsyncStub

INLINE_VALUE_BYTES = 256 * 1024
# Values above this are refused on the way back in: they are text held in memory and in messages.
MAX_VALUE_BYTES = 48 * 1024 * 1024
RESULT_BLOB = "outputs.result"
PARAMETER_BLOB_PREFIX = "outputs.parameters."
BLOB_SUFFIX = ".txt"

Metadata = tuple[tuple[str, str], ...]
TimeoutFor = Callable[[int], float]


async def spill_large_values(
    stub: ArtifactServiceAsyncStub,
    outputs: workflow_pb2.Outputs,
    *,
    workflow: str,
    pod_name: str,
    repository: str = "",
    timeout_for: TimeoutFor,
    metadata: Metadata = (),
    limit: int = INLINE_VALUE_BYTES,
) -> None:
    """Move the result and output parameter values longer than limit bytes into blobs, in place."""

    async def store(name: str, text: str) -> workflow_pb2.StoredArtifact:
        data = text.encode()
        header = artifacts_pb2.UploadHeader(
            workflow=workflow, pod_name=pod_name, artifact_name=name, suffix=BLOB_SUFFIX, repository=repository
        )
        info = await upload_bytes(stub, header, data, timeout=timeout_for(len(data)), metadata=metadata)
        return workflow_pb2.StoredArtifact(
            key=info.key, size_bytes=info.size_bytes, sha256=info.sha256, archive="none", repository=info.repository
        )

    if outputs.HasField("result") and _too_long(outputs.result, limit):
        outputs.result_ref.CopyFrom(await store(RESULT_BLOB, outputs.result))
        outputs.ClearField("result")
    for parameter in outputs.parameters:
        if parameter.HasField("value") and _too_long(parameter.value, limit):
            parameter.value_ref.CopyFrom(await store(PARAMETER_BLOB_PREFIX + parameter.name, parameter.value))
            parameter.ClearField("value")


async def resolve_large_values(
    stub: ArtifactServiceAsyncStub,
    outputs: workflow_pb2.Outputs,
    *,
    timeout_for: TimeoutFor,
    metadata: Metadata = (),
    max_bytes: int = MAX_VALUE_BYTES,
) -> None:
    """Put the text of every referenced blob back into outputs, in place, and clear the references."""

    async def load(ref: workflow_pb2.StoredArtifact) -> str:
        data = await download_bytes(
            stub,
            ref.key,
            repository=ref.repository,
            timeout=timeout_for(ref.size_bytes),
            max_bytes=max_bytes,
            metadata=metadata,
        )
        return data.decode()

    if outputs.HasField("result_ref"):
        outputs.result = await load(outputs.result_ref)
        outputs.ClearField("result_ref")
    for parameter in outputs.parameters:
        if parameter.HasField("value_ref"):
            parameter.value = await load(parameter.value_ref)
            parameter.ClearField("value_ref")


def has_large_values(outputs: workflow_pb2.Outputs) -> bool:
    return outputs.HasField("result_ref") or any(p.HasField("value_ref") for p in outputs.parameters)


def _too_long(text: str, limit: int) -> bool:
    # A str has at most 4 UTF-8 bytes per character: skip encoding what is surely short.
    return len(text) > limit // 4 and len(text.encode()) > limit
