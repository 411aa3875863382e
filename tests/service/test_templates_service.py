"""WorkflowTemplateService over real gRPC on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from treadle.config import ServerConfig
from treadle.grpcutil.channels import open_channel
from treadle.grpcutil.server import create_server
from treadle.services.templates.setup import build
from treadle.store.sqlite import open_database
from treadle.templates.v1 import templates_pb2 as pb
from treadle.templates.v1 import templates_pb2_grpc

TEMPLATE = """
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: greeter, labels: {team: looms}}
spec:
  arguments: {parameters: [{name: who}]}
  templates:
  - name: greet
    inputs: {parameters: [{name: who}]}
    container: {image: busybox, command: [echo, "hi {{inputs.parameters.who}}"]}
"""

Stub = templates_pb2_grpc.WorkflowTemplateServiceStub


def serve(tmp_path: Path, body: Callable[[Stub], Awaitable[None]]) -> None:
    async def main() -> None:
        conn = open_database(tmp_path / "state.db")
        app = build(ServerConfig(data_dir=tmp_path), conn)
        server = await create_server([app.binding])
        try:
            async with open_channel(server.address) as channel:
                await body(Stub(channel))
        finally:
            await server.server.stop(None)
            conn.close()

    asyncio.run(main())


def test_create_get_list_update_delete(tmp_path: Path) -> None:
    async def body(stub: Stub) -> None:
        created = await stub.CreateWorkflowTemplate(
            pb.CreateWorkflowTemplateRequest(request_id="r1", manifest=TEMPLATE), timeout=5
        )
        assert created.template.metadata.name == "greeter"
        assert created.template.metadata.resource_version == "1"
        again = await stub.CreateWorkflowTemplate(
            pb.CreateWorkflowTemplateRequest(request_id="r1", manifest=TEMPLATE), timeout=5
        )
        assert again.template.metadata.uid == created.template.metadata.uid
        got = await stub.GetWorkflowTemplate(pb.GetWorkflowTemplateRequest(name="greeter"), timeout=5)
        assert got.template.spec.templates[0].name == "greet"
        listed = await stub.ListWorkflowTemplates(pb.ListWorkflowTemplatesRequest(), timeout=5)
        assert [t.metadata.name for t in listed.templates] == ["greeter"]
        changed = TEMPLATE.replace("hi {{", "hello {{")
        updated = await stub.UpdateWorkflowTemplate(
            pb.UpdateWorkflowTemplateRequest(manifest=changed, resource_version="1"), timeout=5
        )
        assert updated.template.metadata.resource_version == "2"
        with pytest.raises(grpc.aio.AioRpcError) as stale:
            await stub.UpdateWorkflowTemplate(
                pb.UpdateWorkflowTemplateRequest(manifest=changed, resource_version="1"), timeout=5
            )
        assert stale.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        status = rpc_status.from_call(stale.value)
        assert status is not None and status.details[0].Is(error_details_pb2.PreconditionFailure.DESCRIPTOR)
        await stub.DeleteWorkflowTemplate(pb.DeleteWorkflowTemplateRequest(name="greeter", request_id="d1"), timeout=5)
        await stub.DeleteWorkflowTemplate(pb.DeleteWorkflowTemplateRequest(name="greeter", request_id="d1"), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await stub.GetWorkflowTemplate(pb.GetWorkflowTemplateRequest(name="greeter"), timeout=5)
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND

    serve(tmp_path, body)


def test_invalid_template_is_rejected_and_not_stored(tmp_path: Path) -> None:
    async def body(stub: Stub) -> None:
        bad = TEMPLATE.replace("{{inputs.parameters.who}}", "{{inputs.parameters.nobody}}")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.CreateWorkflowTemplate(pb.CreateWorkflowTemplateRequest(manifest=bad), timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        status = rpc_status.from_call(err.value)
        assert status is not None
        detail = error_details_pb2.BadRequest()
        status.details[0].Unpack(detail)
        assert detail.field_violations[0].field == "spec.templates[0].container.command[1]"
        wrong_kind = TEMPLATE.replace("kind: WorkflowTemplate", "kind: Workflow")
        with pytest.raises(grpc.aio.AioRpcError) as kind:
            await stub.LintWorkflowTemplate(pb.LintWorkflowTemplateRequest(manifest=wrong_kind), timeout=5)
        assert kind.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "kind" in (kind.value.details() or "")
        listed = await stub.ListWorkflowTemplates(pb.ListWorkflowTemplatesRequest(), timeout=5)
        assert list(listed.templates) == []

    serve(tmp_path, body)


def test_pagination_is_complete(tmp_path: Path) -> None:
    async def body(stub: Stub) -> None:
        for i in range(7):
            manifest = TEMPLATE.replace("name: greeter", f"name: t{i}")
            await stub.CreateWorkflowTemplate(pb.CreateWorkflowTemplateRequest(manifest=manifest), timeout=5)
        names, token = [], ""
        while True:
            page = await stub.ListWorkflowTemplates(
                pb.ListWorkflowTemplatesRequest(page_size=3, page_token=token), timeout=5
            )
            names += [t.metadata.name for t in page.templates]
            token = page.next_page_token
            if not token:
                break
        assert names == [f"t{i}" for i in range(7)]

    serve(tmp_path, body)
