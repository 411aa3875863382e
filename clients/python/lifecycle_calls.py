"""TreadleClient's lifecycle calls: suspend, resume, stop, terminate, set_node, retry and resubmit.

Each returns the workflow as it is after the call. Each takes a request_id (a
fresh uuid when none is given) that makes a retried call safe: the server applies
it once. A call that arrives before the scheduler has taken up a just-submitted
workflow is answered Unavailable ("try again shortly"); these calls retry that a
few times, with the same request_id, before they give up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TypeAlias

import grpc

from treadle import errors
from treadle.admission.v1 import admission_pb2 as adm
from treadle.client.argo_json import NODE_PHASES
from treadle.client.calls_base import CallerBase, Request, Response, fresh_request_id
from treadle.workflow.v1 import workflow_pb2 as wf_pb
from treadle.workflow.v1.workflow_pb2 import Workflow

# Pauses between attempts while the server answers Unavailable: about 1.5 s in all.
UNAVAILABLE_RETRY_DELAYS = (0.1, 0.2, 0.4, 0.8)
# The phases SetWorkflowNode accepts: Succeeded resumes the node, Failed and Error fail it.
SETTABLE_NODE_PHASES = (wf_pb.NODE_PHASE_SUCCEEDED, wf_pb.NODE_PHASE_FAILED, wf_pb.NODE_PHASE_ERROR)

# "Succeeded", "Failed" or "Error" (any case), or the enum value.
NodePhaseLike: TypeAlias = "str | wf_pb.NodePhase.ValueType"


def settable_node_phase(phase: NodePhaseLike) -> wf_pb.NodePhase.ValueType:
    """The NodePhase for "Succeeded", "Failed" or "Error" (any case) or the enum value; "" means unset."""
    if not isinstance(phase, str):
        value = phase
    elif not phase:
        return wf_pb.NODE_PHASE_UNSPECIFIED
    else:
        by_name = {name.lower(): value for value, name in NODE_PHASES.items()}
        value = by_name.get(phase.strip().lower(), wf_pb.NODE_PHASE_UNSPECIFIED)
    if value != wf_pb.NODE_PHASE_UNSPECIFIED and value not in SETTABLE_NODE_PHASES:
        value = wf_pb.NODE_PHASE_UNSPECIFIED
    if value == wf_pb.NODE_PHASE_UNSPECIFIED:
        raise errors.InvalidSpec(f"phase {phase!r} cannot be set; expected Succeeded, Failed or Error", field="phase")
    return value


class LifecycleCalls(CallerBase):
    async def _control(self, method: grpc.aio.UnaryUnaryMultiCallable[Request, Response], request: Request) -> Response:
        for delay in (*UNAVAILABLE_RETRY_DELAYS, None):
            try:
                return await self._call(method, request)
            except errors.Unavailable:
                if delay is None:
                    raise
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def suspend(self, name: str, *, request_id: str = "") -> Workflow:
        """Hold back new steps until resume(); steps already running go on."""
        request = adm.SuspendWorkflowRequest(name=name, request_id=fresh_request_id(request_id))
        return (await self._control(self._admission().SuspendWorkflow, request)).workflow

    async def resume(self, name: str, *, node: str = "", request_id: str = "") -> Workflow:
        """Resume a suspended workflow and its waiting suspend nodes, or only node (id, name or display name)."""
        request = adm.ResumeWorkflowRequest(name=name, node=node, request_id=fresh_request_id(request_id))
        return (await self._control(self._admission().ResumeWorkflow, request)).workflow

    async def stop(self, name: str, *, message: str = "", request_id: str = "") -> Workflow:
        """Fail the workflow now; running steps are killed, exit handlers still run."""
        request = adm.StopWorkflowRequest(name=name, message=message, request_id=fresh_request_id(request_id))
        return (await self._control(self._admission().StopWorkflow, request)).workflow

    async def terminate(self, name: str, *, message: str = "", request_id: str = "") -> Workflow:
        """Fail the workflow now, without running exit handlers."""
        request = adm.TerminateWorkflowRequest(name=name, message=message, request_id=fresh_request_id(request_id))
        return (await self._control(self._admission().TerminateWorkflow, request)).workflow

    async def set_node(
        self,
        name: str,
        node: str,
        *,
        parameters: Mapping[str, str] | None = None,
        phase: NodePhaseLike = "",
        message: str = "",
        request_id: str = "",
    ) -> Workflow:
        """Supply output parameters (valueFrom.supplied) of a waiting suspend node.

        phase "Succeeded" also resumes the node, "Failed" or "Error" fails it with
        message; without a phase the node keeps waiting.
        """
        request = adm.SetWorkflowNodeRequest(
            name=name,
            node=node,
            output_parameters=dict(parameters or {}),
            phase=settable_node_phase(phase) if phase else wf_pb.NODE_PHASE_UNSPECIFIED,
            message=message,
            request_id=fresh_request_id(request_id),
        )
        return (await self._control(self._admission().SetWorkflowNode, request)).workflow

    async def retry(self, name: str, *, request_id: str = "") -> Workflow:
        """Run a Failed or Error workflow again under its name: failed nodes re-run, succeeded ones keep outputs."""
        request = adm.RetryWorkflowRequest(name=name, request_id=fresh_request_id(request_id))
        return (await self._control(self._admission().RetryWorkflow, request)).workflow

    async def resubmit(
        self, name: str, *, parameters: Mapping[str, str] | None = None, request_id: str = ""
    ) -> Workflow:
        """Submit a new workflow with name's spec (named name-xxxxx); returns it as admitted."""
        request = adm.ResubmitWorkflowRequest(
            name=name, parameters=dict(parameters or {}), request_id=fresh_request_id(request_id)
        )
        return (await self._control(self._admission().ResubmitWorkflow, request)).workflow
