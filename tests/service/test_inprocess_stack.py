"""`start_stack` all-in-one: OutputService tells the co-hosted scheduler in-process (CompleteStep), and a
workflow runs to completion that way; a stopped stack is unhosted again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from treadle.client.client import TreadleClient
from treadle.config import ServerConfig, ServiceAddresses
from treadle.grpcutil import inprocess
from treadle.scheduler.v1 import scheduler_pb2
from treadle.services.scheduler.service import SchedulerServicer
from treadle.services.server import start_stack
from treadle.workflow.v1 import workflow_pb2

SCHEDULER = "treadle.scheduler.v1.SchedulerService"
STEPS = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: cohosted}
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - {name: hello, template: say, arguments: {parameters: [{name: word, value: hello}]}}
        - - {name: world, template: say, arguments: {parameters: [{name: word, value: "{{steps.hello.outputs.result}} world"}]}}
    - name: say
      inputs: {parameters: [{name: word}]}
      container: {image: busybox, command: [echo, "{{inputs.parameters.word}}"]}
"""


def config(tmp_path: Path) -> ServerConfig:
    return ServerConfig(data_dir=tmp_path, listen="127.0.0.1:0", addresses=ServiceAddresses())


def test_all_in_one_a_workflow_completes_with_complete_step_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The one seam: note how each CompleteStep reached the scheduler's servicer, then run it as it is.
    complete_step = SchedulerServicer.CompleteStep
    arrived: list[tuple[str, str]] = []

    async def noting(self: SchedulerServicer, request: scheduler_pb2.CompleteStepRequest, context: Any) -> Any:
        arrived.append((request.node_id, type(context).__name__))
        return await complete_step(self, request, context)

    monkeypatch.setattr(SchedulerServicer, "CompleteStep", noting)

    async def main() -> tuple[workflow_pb2.Workflow, str]:
        stack = await start_stack(config(tmp_path))
        try:
            # Every co-hosted service is reachable in-process at the stack's address.
            assert isinstance(inprocess.stub(stack.address, SCHEDULER, None, {"CompleteStep"}), inprocess.InProcessStub)
            async with TreadleClient(stack.address) as client:
                await client.submit(STEPS)
                final = await client.wait("cohosted", timeout=60)
        finally:
            await stack.stop(grace=0)
        return final, stack.address

    final, address = asyncio.run(main())
    assert final.status.phase == workflow_pb2.WORKFLOW_PHASE_SUCCEEDED, final.status.message
    results = {
        n.display_name: n.outputs.result for n in final.status.nodes.values() if n.type == workflow_pb2.NODE_TYPE_POD
    }
    assert results == {"hello": "hello", "world": "hello world"}
    # Both steps' reports reached the scheduler in-process, once each.
    assert sorted(kind for _, kind in arrived) == ["InProcessContext", "InProcessContext"]
    assert len({node for node, _ in arrived}) == 2
    # Stopped: nothing is hosted at that address any more.
    remote = object()
    assert inprocess.stub(address, SCHEDULER, remote, {"CompleteStep"}) is remote


def completer_stub(stack: Any) -> object:
    """The stub OutputService's step completer calls CompleteStep on."""
    return stack.apps["outputs"].core.scheduler._stub


def test_outputs_takes_the_in_process_path_only_when_the_scheduler_is_co_hosted(tmp_path: Path) -> None:
    async def main() -> None:
        together = await start_stack(config(tmp_path / "together"))
        try:
            assert isinstance(completer_stub(together), inprocess.InProcessStub)
        finally:
            await together.stop(grace=0)

        # Split: OutputService alone, the scheduler elsewhere (never dialled here): the real stub.
        alone_config = ServerConfig(
            data_dir=tmp_path / "alone", listen="127.0.0.1:0", addresses=ServiceAddresses(scheduler="127.0.0.1:1")
        )
        alone = await start_stack(alone_config, ["outputs"])
        try:
            stub = completer_stub(alone)
            assert not isinstance(stub, inprocess.InProcessStub)
            assert type(stub).__name__ == "SchedulerServiceStub"
        finally:
            await alone.stop(grace=0)

    asyncio.run(main())
