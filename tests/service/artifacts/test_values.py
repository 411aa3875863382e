"""Large results and output parameters: spilled to blobs by the executor's side, resolved byte-exact."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest
from artifacts_harness import TOKENS, MiB, serving, step_metadata
from artifacts_s3 import S3Server

from treadle.errors import InvalidSpec
from treadle.outputs.v1 import outputs_pb2
from treadle.services.artifacts.catalog import load_catalog
from treadle.services.artifacts.step_io import transfer_timeout
from treadle.services.artifacts.values import (
    INLINE_VALUE_BYTES,
    has_large_values,
    resolve_large_values,
    spill_large_values,
)
from treadle.workflow.v1 import workflow_pb2


def ten_megabytes_of_text() -> str:
    # Every byte value a UTF-8 text may hold, multi-byte characters included, and no trailing newline trimming.
    block = "".join(chr(c) for c in range(1, 0x800) if not 0xD800 <= c <= 0xDFFF) + "\n\r\t é 漢 🎉"
    text = block * (10 * MiB // len(block.encode()) + 1)
    return text[: 10 * MiB // 2]


@pytest.fixture(params=["local", "s3"])
def repository_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return (tmp_path / "repo").as_uri()
    server: S3Server = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("bucket")
    request.getfixturevalue("s3_env")
    return f"s3://{bucket}?endpoint={server.endpoint}&insecure=1&region=us-east-1"


def test_ten_megabyte_result_and_parameter_round_trip_exactly(repository_uri: str) -> None:
    big = ten_megabytes_of_text()
    assert len(big.encode()) > 10 * 1000 * 1000
    other = os.urandom(300 * 1024).hex()  # just above the limit
    small = "x" * INLINE_VALUE_BYTES  # exactly at the limit: stays inline

    async def main() -> None:
        async with serving(load_catalog(repository_uri, tokens=TOKENS)) as s:
            outputs = workflow_pb2.Outputs(
                result=big,
                exit_code="0",
                parameters=[
                    workflow_pb2.Parameter(name="big", value=other),
                    workflow_pb2.Parameter(name="small", value=small),
                    workflow_pb2.Parameter(name="empty", value=""),
                ],
            )
            await spill_large_values(
                s.stub, outputs, workflow="wf", pod_name="wf-pod", timeout_for=transfer_timeout,
                metadata=step_metadata("wf"),
            )  # fmt: skip
            assert not outputs.HasField("result") and outputs.result_ref.key == "wf/wf-pod/outputs.result.txt"
            assert outputs.result_ref.sha256 == hashlib.sha256(big.encode()).hexdigest()
            assert outputs.parameters[0].value_ref.key == "wf/wf-pod/outputs.parameters.big.txt"
            assert outputs.parameters[1].value == small and not outputs.parameters[1].HasField("value_ref")
            assert has_large_values(outputs)

            # What travels in the report is small; the engine's side resolves it back.
            report = outputs_pb2.ReportStepOutputsRequest(workflow="wf", node_id="n", outputs=outputs)
            assert report.ByteSize() < INLINE_VALUE_BYTES + 4096  # the inline one, and references
            received = outputs_pb2.ReportStepOutputsRequest.FromString(report.SerializeToString()).outputs
            await resolve_large_values(s.stub, received, timeout_for=transfer_timeout)
            assert received.result == big
            assert [p.value for p in received.parameters] == [other, small, ""]
            assert not has_large_values(received)
            assert received.exit_code == "0"

            too_small = workflow_pb2.Outputs(result_ref=outputs.result_ref)
            with pytest.raises(InvalidSpec, match="more than the 1000 allowed"):
                await resolve_large_values(s.stub, too_small, timeout_for=transfer_timeout, max_bytes=1000)

    asyncio.run(main())
