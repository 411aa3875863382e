"""WorkflowTemplateService: a thin gRPC layer over the Templates core."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from treadle.errors import FieldViolation, InvalidSpec
from treadle.grpcutil.status import grpc_errors
from treadle.services.templates.core import Templates, parse_template
from treadle.services.templates.repository import StoredTemplate
from treadle.spec.convert import spec_from_dict, workflow_to_dict
from treadle.templates.v1 import templates_pb2 as pb
from treadle.templates.v1 import templates_pb2_grpc
from treadle.workflow.v1 import workflow_pb2 as wf

Context = grpc.aio.ServicerContext[Any, Any]


def _source(request: Any, typed_field: str = "template") -> dict[str, Any]:
    which = request.WhichOneof("source")
    if which == "manifest":
        return parse_template(None, request.manifest)
    if which == typed_field:
        typed = getattr(request, typed_field)
        doc = workflow_to_dict(wf.Workflow(metadata=typed.metadata, spec=typed.spec))
        return parse_template(doc, "")
    raise InvalidSpec(FieldViolation("source", "set template or manifest"))


def to_message(t: StoredTemplate) -> pb.WorkflowTemplate:
    created = Timestamp()
    created.FromNanoseconds(int(t.created_at * 1e9))
    meta = wf.ObjectMeta(
        name=t.name,
        namespace="default",
        uid=t.uid,
        labels=t.labels,
        annotations=t.annotations,
        creation_timestamp=created,
        resource_version=str(t.resource_version),
    )
    return pb.WorkflowTemplate(metadata=meta, spec=spec_from_dict(t.spec))


class TemplateServicer(templates_pb2_grpc.WorkflowTemplateServiceServicer):
    def __init__(self, templates: Templates) -> None:
        self.templates = templates

    @grpc_errors
    async def CreateWorkflowTemplate(
        self, request: pb.CreateWorkflowTemplateRequest, context: Context
    ) -> pb.CreateWorkflowTemplateResponse:
        stored = self.templates.create(_source(request), request.request_id)
        return pb.CreateWorkflowTemplateResponse(template=to_message(stored))

    @grpc_errors
    async def GetWorkflowTemplate(
        self, request: pb.GetWorkflowTemplateRequest, context: Context
    ) -> pb.GetWorkflowTemplateResponse:
        return pb.GetWorkflowTemplateResponse(template=to_message(self.templates.get(_name(request.name))))

    @grpc_errors
    async def ListWorkflowTemplates(
        self, request: pb.ListWorkflowTemplatesRequest, context: Context
    ) -> pb.ListWorkflowTemplatesResponse:
        page, token = self.templates.list(request.page_size, request.page_token)
        return pb.ListWorkflowTemplatesResponse(templates=[to_message(t) for t in page], next_page_token=token)

    @grpc_errors
    async def UpdateWorkflowTemplate(
        self, request: pb.UpdateWorkflowTemplateRequest, context: Context
    ) -> pb.UpdateWorkflowTemplateResponse:
        stored = self.templates.update(_source(request), request.resource_version)
        return pb.UpdateWorkflowTemplateResponse(template=to_message(stored))

    @grpc_errors
    async def DeleteWorkflowTemplate(
        self, request: pb.DeleteWorkflowTemplateRequest, context: Context
    ) -> pb.DeleteWorkflowTemplateResponse:
        self.templates.delete(_name(request.name), request.request_id)
        return pb.DeleteWorkflowTemplateResponse()

    @grpc_errors
    async def LintWorkflowTemplate(
        self, request: pb.LintWorkflowTemplateRequest, context: Context
    ) -> pb.LintWorkflowTemplateResponse:
        doc = _source(request)
        meta = doc.get("metadata") or {}
        linted = pb.WorkflowTemplate(
            metadata=wf.ObjectMeta(name=meta.get("name", "")), spec=spec_from_dict(doc["spec"])
        )
        return pb.LintWorkflowTemplateResponse(template=linted)


def _name(name: str) -> str:
    if not name:
        raise InvalidSpec(FieldViolation("name", "name is required"))
    return name
