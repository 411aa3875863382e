"""treadle's Python client: a typed async client, a blocking facade, and argo-shaped JSON.

    from treadle.client import TreadleClient

    async with TreadleClient("127.0.0.1:7733") as client:
        final = await client.wait((await client.submit(manifest_text)).metadata.name)

Names load on first use, so that `treadle` (the CLI, which lives in this
package) starts without importing grpc.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from treadle.client.argo_json import workflow_phase_name, workflow_to_argo_json
    from treadle.client.client import ListFilter, LogLine, TreadleClient, is_final
    from treadle.client.connection import ChannelSecurity
    from treadle.client.lock_calls import Lock
    from treadle.client.sync import SyncTreadleClient
    from treadle.errors import (
        AlreadyExists,
        FailedPrecondition,
        InvalidSpec,
        NotFound,
        PermissionDenied,
        TreadleError,
        Unavailable,
    )
    from treadle.templates.v1.templates_pb2 import WorkflowTemplate
    from treadle.workflow.v1.workflow_pb2 import Workflow

_EXPORTS = {
    "TreadleClient": "treadle.client.client",
    "LogLine": "treadle.client.client",
    "ListFilter": "treadle.client.client",
    "is_final": "treadle.client.client",
    "ChannelSecurity": "treadle.client.connection",
    "Lock": "treadle.client.lock_calls",
    "WorkflowTemplate": "treadle.templates.v1.templates_pb2",
    "SyncTreadleClient": "treadle.client.sync",
    "workflow_to_argo_json": "treadle.client.argo_json",
    "workflow_phase_name": "treadle.client.argo_json",
    "Workflow": "treadle.workflow.v1.workflow_pb2",
    "TreadleError": "treadle.errors",
    "InvalidSpec": "treadle.errors",
    "NotFound": "treadle.errors",
    "AlreadyExists": "treadle.errors",
    "FailedPrecondition": "treadle.errors",
    "PermissionDenied": "treadle.errors",
    "Unavailable": "treadle.errors",
}

__all__ = [
    "AlreadyExists",
    "ChannelSecurity",
    "FailedPrecondition",
    "InvalidSpec",
    "ListFilter",
    "Lock",
    "LogLine",
    "NotFound",
    "PermissionDenied",
    "SyncTreadleClient",
    "TreadleClient",
    "TreadleError",
    "Unavailable",
    "Workflow",
    "WorkflowTemplate",
    "is_final",
    "workflow_phase_name",
    "workflow_to_argo_json",
]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'treadle.client' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
