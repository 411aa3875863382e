"""Conventions of the public API that buf's lint rules do not check (docs/api.md, "Conventions")."""

from __future__ import annotations

import importlib

import pytest
from google.protobuf.descriptor import Descriptor, ServiceDescriptor

# (module, service) of every service that clients call.
PUBLIC_SERVICES = (
    ("treadle.admission.v1.admission_pb2", "AdmissionService"),
    ("treadle.templates.v1.templates_pb2", "WorkflowTemplateService"),
)
# Calls that change nothing; every other call must take a request_id.
READ_ONLY_PREFIXES = ("Get", "List", "Watch", "Lint")
READ_ONLY = {"WorkflowLogs"}


def public_services() -> list[ServiceDescriptor]:
    found = []
    for module_name, service in PUBLIC_SERVICES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # a service that is not written yet
        found.append(module.DESCRIPTOR.services_by_name[service])
    return found


def mutating(service: ServiceDescriptor) -> list[str]:
    return [m.name for m in service.methods if not m.name.startswith(READ_ONLY_PREFIXES) and m.name not in READ_ONLY]


@pytest.mark.parametrize("service", public_services(), ids=lambda s: s.name)
def test_every_mutating_rpc_takes_a_request_id(service: ServiceDescriptor) -> None:
    missing = [
        name
        for name in mutating(service)
        if "request_id" not in service.methods_by_name[name].input_type.fields_by_name
    ]
    assert missing == []


def returned_workflows(message: Descriptor) -> list[str]:
    return [
        f.name for f in message.fields if f.message_type is not None and f.message_type.full_name.endswith(".Workflow")
    ]


def test_every_admission_rpc_that_returns_a_workflow_documents_its_resource_version() -> None:
    from treadle.admission.v1 import admission_pb2

    service = admission_pb2.DESCRIPTOR.services_by_name["AdmissionService"]
    returning = [m.name for m in service.methods if returned_workflows(m.output_type)]
    assert {"SubmitWorkflow", "GetWorkflow", "ListWorkflows", "WatchWorkflow", "SuspendWorkflow"} <= set(returning)
    assert "resource_version" in admission_pb2.WatchWorkflowRequest.DESCRIPTOR.fields_by_name
