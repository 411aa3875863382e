"""An async client for treadle's AdmissionService.

    async with TreadleClient("127.0.0.1:7733") as client:
        workflow = await client.submit(manifest_text, parameters={"who": "world"})
        final = await client.wait(workflow.metadata.name)

Failed calls raise the domain errors of `treadle.errors` (InvalidSpec,
NotFound, Unavailable, ...), never grpc's RpcError.

Deadlines: every unary call carries `timeout` (default 10 s). `logs` reads
saved logs and ends on its own, so it gets a long but finite deadline
(`logs_timeout`). `watch` has no deadline by default: a workflow may run for
hours and a deadline would cut a healthy stream; a dead server is noticed by
the channel's keepalive pings instead, and callers that need a bound pass
`timeout` to `watch` or `wait`.
"""

from __future__ import annotations

import asyncio
import builtins
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

import grpc

from treadle import errors
from treadle.admission.v1 import admission_pb2 as adm
from treadle.admission.v1 import admission_pb2_grpc as adm_grpc
from treadle.client.argo_json import FINAL_WORKFLOW_PHASES
from treadle.client.connection import ChannelSecurity, open_client_channel
from treadle.client.lifecycle_calls import LifecycleCalls
from treadle.client.lock_calls import LockCalls
from treadle.client.template_calls import TemplateCalls
from treadle.grpcutil.channels import DEFAULT_TIMEOUT
from treadle.grpcutil.status import error_from_rpc
from treadle.workflow.v1.workflow_pb2 import Workflow, WorkflowPhase

LOGS_TIMEOUT = 300.0
# How long `wait` keeps trying to re-open a watch after the server went away
# (for example while it restarts) before giving up with Unavailable.
RECONNECT_WINDOW = 60.0
_RECONNECT_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0)

Source = str | Workflow
Request = TypeVar("Request")
Response = TypeVar("Response")


@dataclass(frozen=True)
class ListFilter:
    """Which workflows `list` returns; the conditions combine."""

    # Kubernetes label selector, for example "team=a,env in (dev,test),!canary".
    label_selector: str = ""
    # Empty means any phase.
    phases: tuple[WorkflowPhase.ValueType, ...] = ()
    name_prefix: str = ""


@dataclass(frozen=True)
class LogLine:
    """One line a step wrote."""

    node_id: str
    node_name: str
    content: str


def is_final(workflow: Workflow) -> bool:
    """True once the workflow has Succeeded, Failed or hit an Error."""
    return workflow.status.phase in FINAL_WORKFLOW_PHASES


class TreadleClient(LifecycleCalls, TemplateCalls, LockCalls):
    """Talks to a treadle server (admission service) at host:port.

    The lifecycle, WorkflowTemplate and semaphore calls come from the mixins;
    security sets TLS and a bearer token (treadle.client.connection).
    """

    def __init__(
        self,
        address: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        logs_timeout: float = LOGS_TIMEOUT,
        security: ChannelSecurity | None = None,
        scheduler_address: str = "",
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.logs_timeout = logs_timeout
        self.security = security
        self.scheduler_address = scheduler_address
        self._channel: grpc.aio.Channel | None = None
        self._stub: adm_grpc.AdmissionServiceAsyncStub | None = None

    async def __aenter__(self) -> TreadleClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._close_scheduler_channel()
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stub = None

    def _admission(self) -> adm_grpc.AdmissionServiceAsyncStub:
        # Opened on first use so that the channel binds to the running event loop.
        if self._stub is None:
            self._stub = adm_grpc.AdmissionServiceStub(self._open_channel())
        return self._stub

    def _open_channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            self._channel = open_client_channel(self.address, self.security)
        return self._channel

    async def _call(self, method: grpc.aio.UnaryUnaryMultiCallable[Request, Response], request: Request) -> Response:
        try:
            return await method(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None

    # -- the AdmissionService RPCs ----------------------------------------------

    async def submit(
        self,
        source: Source,
        *,
        parameters: Mapping[str, str] | None = None,
        entrypoint: str = "",
        generate_name: str = "",
        labels: Mapping[str, str] | None = None,
        request_id: str = "",
    ) -> Workflow:
        """Submit manifest text (YAML or JSON) or a typed Workflow; returns it as stored.

        request_id makes retries safe; a fresh uuid is used when none is given.
        """
        request = adm.SubmitWorkflowRequest(
            request_id=request_id or str(uuid.uuid4()),
            parameters=dict(parameters or {}),
            entrypoint=entrypoint,
            generate_name=generate_name,
            labels=dict(labels or {}),
        )
        if isinstance(source, str):
            request.manifest = source
        else:
            request.workflow.CopyFrom(source)
        response = await self._call(self._admission().SubmitWorkflow, request)
        return response.workflow

    async def lint(self, source: Source, *, parameters: Mapping[str, str] | None = None) -> Workflow:
        """Validate without storing; returns the normalised workflow or raises InvalidSpec."""
        request = adm.LintWorkflowRequest(parameters=dict(parameters or {}))
        if isinstance(source, str):
            request.manifest = source
        else:
            request.workflow.CopyFrom(source)
        response = await self._call(self._admission().LintWorkflow, request)
        return response.workflow

    async def get(self, name: str) -> Workflow:
        response = await self._call(self._admission().GetWorkflow, adm.GetWorkflowRequest(name=name))
        return response.workflow

    async def delete(self, name: str, *, request_id: str = "") -> None:
        """Stop the workflow if it runs and delete it with its outputs."""
        request = adm.DeleteWorkflowRequest(name=name, request_id=request_id or str(uuid.uuid4()))
        await self._call(self._admission().DeleteWorkflow, request)

    async def list_page(
        self, *, page_size: int = 0, page_token: str = "", filters: ListFilter | None = None
    ) -> tuple[builtins.list[Workflow], str]:
        """One page of workflows (newest first) and the token of the next page ("" on the last).

        A filtered page may hold fewer workflows than page_size, even none, while more follow.
        """
        request = adm.ListWorkflowsRequest(page_size=page_size, page_token=page_token)
        if filters is not None:
            request.label_selector = filters.label_selector
            request.name_prefix = filters.name_prefix
            request.phases.extend(filters.phases)
        response = await self._call(self._admission().ListWorkflows, request)
        return builtins.list(response.workflows), response.next_page_token

    async def list(self, *, page_size: int = 0, filters: ListFilter | None = None) -> AsyncIterator[Workflow]:
        """Every workflow that matches filters, newest first, fetching pages as iteration goes."""
        token = ""
        while True:
            page, token = await self.list_page(page_size=page_size, page_token=token, filters=filters)
            for workflow in page:
                yield workflow
            if not token:
                return

    async def watch(
        self, name: str, *, resource_version: str = "", timeout: float | None = None
    ) -> AsyncIterator[Workflow]:
        """The workflow's current state, then every change; ends after a final phase.

        With resource_version (from the last state seen), only newer states are sent.
        """
        request = adm.WatchWorkflowRequest(name=name, resource_version=resource_version)
        call = self._admission().WatchWorkflow(request, timeout=timeout)
        try:
            async for response in call:
                yield response.workflow
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None
        finally:
            call.cancel()

    async def logs(self, name: str, *, node: str = "", follow: bool = False) -> AsyncIterator[LogLine]:
        """The saved log lines of every pod node, or of one node (id, name or display name).

        With follow, running steps' lines come as they are written, until the workflow has
        finished; like `watch`, such a call has no deadline.
        """
        request = adm.WorkflowLogsRequest(name=name, node=node, follow=follow)
        call = self._admission().WorkflowLogs(request, timeout=None if follow else self.logs_timeout)
        try:
            async for response in call:
                yield LogLine(node_id=response.node_id, node_name=response.node_name, content=response.content)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None
        finally:
            call.cancel()

    # -- helpers ----------------------------------------------------------------

    async def wait(
        self,
        name: str,
        *,
        timeout: float | None = None,
        on_update: Callable[[Workflow], None] | None = None,
        reconnect_window: float = RECONNECT_WINDOW,
    ) -> Workflow:
        """Watch until the workflow reaches a final phase and return it.

        A watch broken by an unreachable server (a restart, say) is re-opened,
        resuming after the last state seen, until reconnect_window seconds pass
        without contact. timeout bounds the whole wait and raises TimeoutError.
        """
        async with asyncio.timeout(timeout):
            return await self._wait_forever(name, on_update, reconnect_window)

    async def _wait_forever(
        self, name: str, on_update: Callable[[Workflow], None] | None, reconnect_window: float
    ) -> Workflow:
        last_contact = time.monotonic()
        attempt = 0
        version = ""
        while True:
            try:
                async for workflow in self.watch(name, resource_version=version):
                    last_contact = time.monotonic()
                    attempt = 0
                    version = workflow.metadata.resource_version
                    if on_update is not None:
                        on_update(workflow)
                    if is_final(workflow):
                        return workflow
            except errors.Unavailable:
                if time.monotonic() - last_contact > reconnect_window:
                    raise
            # The stream ended (or broke) before a final phase: open it again.
            await asyncio.sleep(_RECONNECT_DELAYS[min(attempt, len(_RECONNECT_DELAYS) - 1)])
            attempt += 1
