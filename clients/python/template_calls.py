"""TreadleClient's WorkflowTemplate calls: create, get, list, update, delete and lint.

WorkflowTemplateService is hosted beside AdmissionService, on the same address.
Templates go in as manifest text (YAML or JSON, kind WorkflowTemplate) or as
typed WorkflowTemplate messages.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator

from treadle.client.calls_base import CallerBase, fresh_request_id
from treadle.templates.v1 import templates_pb2 as tpl
from treadle.templates.v1 import templates_pb2_grpc as tpl_grpc
from treadle.templates.v1.templates_pb2 import WorkflowTemplate

TemplateSource = str | WorkflowTemplate


class TemplateCalls(CallerBase):
    def _templates(self) -> tpl_grpc.WorkflowTemplateServiceAsyncStub:
        # A stub is a handful of method objects on the shared channel: cheap to make per call.
        return tpl_grpc.WorkflowTemplateServiceStub(self._open_channel())

    async def create_template(self, source: TemplateSource, *, request_id: str = "") -> WorkflowTemplate:
        """Validate and store a new WorkflowTemplate; AlreadyExists when its name is taken."""
        request = tpl.CreateWorkflowTemplateRequest(request_id=fresh_request_id(request_id))
        if isinstance(source, str):
            request.manifest = source
        else:
            request.template.CopyFrom(source)
        return (await self._call(self._templates().CreateWorkflowTemplate, request)).template

    async def get_template(self, name: str) -> WorkflowTemplate:
        request = tpl.GetWorkflowTemplateRequest(name=name)
        return (await self._call(self._templates().GetWorkflowTemplate, request)).template

    async def list_templates_page(
        self, *, page_size: int = 0, page_token: str = ""
    ) -> tuple[builtins.list[WorkflowTemplate], str]:
        """One page of templates in name order, and the next page's token ("" on the last)."""
        request = tpl.ListWorkflowTemplatesRequest(page_size=page_size, page_token=page_token)
        response = await self._call(self._templates().ListWorkflowTemplates, request)
        return builtins.list(response.templates), response.next_page_token

    async def list_templates(self, *, page_size: int = 0) -> AsyncIterator[WorkflowTemplate]:
        """Every template in name order, fetching pages as iteration goes."""
        token = ""
        while True:
            page, token = await self.list_templates_page(page_size=page_size, page_token=token)
            for template in page:
                yield template
            if not token:
                return

    async def update_template(
        self, source: TemplateSource, *, resource_version: str = "", request_id: str = ""
    ) -> WorkflowTemplate:
        """Replace the spec of the template that source's metadata.name names.

        With resource_version, only if that is still the stored version (else FailedPrecondition).
        """
        request = tpl.UpdateWorkflowTemplateRequest(
            request_id=fresh_request_id(request_id), resource_version=resource_version
        )
        if isinstance(source, str):
            request.manifest = source
        else:
            request.template.CopyFrom(source)
        return (await self._call(self._templates().UpdateWorkflowTemplate, request)).template

    async def delete_template(self, name: str, *, request_id: str = "") -> None:
        """Delete a template; workflows already submitted keep their copy."""
        request = tpl.DeleteWorkflowTemplateRequest(name=name, request_id=fresh_request_id(request_id))
        await self._call(self._templates().DeleteWorkflowTemplate, request)

    async def lint_template(self, source: TemplateSource) -> WorkflowTemplate:
        """Validate without storing; returns the normalised template or raises InvalidSpec."""
        request = tpl.LintWorkflowTemplateRequest()
        if isinstance(source, str):
            request.manifest = source
        else:
            request.template.CopyFrom(source)
        return (await self._call(self._templates().LintWorkflowTemplate, request)).template
