"""A blocking facade over TreadleClient for scripts and notebooks.

    with SyncTreadleClient("127.0.0.1:7733") as client:
        name = client.submit(text).metadata.name
        print(client.wait(name).status.phase)

It owns a private event loop (asyncio.Runner), so it must not be used from
inside a running loop; async code uses TreadleClient directly.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

from treadle.client.client import LOGS_TIMEOUT, ListFilter, LogLine, Source, TreadleClient
from treadle.client.connection import ChannelSecurity
from treadle.client.lifecycle_calls import NodePhaseLike
from treadle.client.lock_calls import Lock
from treadle.client.template_calls import TemplateSource
from treadle.grpcutil.channels import DEFAULT_TIMEOUT
from treadle.templates.v1.templates_pb2 import WorkflowTemplate
from treadle.workflow.v1.workflow_pb2 import Workflow

T = TypeVar("T")


class SyncTreadleClient:
    """The methods of TreadleClient, blocking; streams become plain iterators."""

    def __init__(
        self,
        address: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        logs_timeout: float = LOGS_TIMEOUT,
        security: ChannelSecurity | None = None,
        scheduler_address: str = "",
    ) -> None:
        self._runner = asyncio.Runner()
        self._client = TreadleClient(
            address,
            timeout=timeout,
            logs_timeout=logs_timeout,
            security=security,
            scheduler_address=scheduler_address,
        )

    def __enter__(self) -> SyncTreadleClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._run(self._client.close())
        self._runner.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coroutine)

    def _iterate(self, stream: AsyncIterator[T]) -> Iterator[T]:
        async def next_batch() -> builtins.list[T]:
            try:
                return [await anext(stream)]
            except StopAsyncIteration:
                return []

        try:
            while batch := self._run(next_batch()):
                yield batch[0]
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                self._run(aclose())

    def submit(
        self,
        source: Source,
        *,
        parameters: Mapping[str, str] | None = None,
        entrypoint: str = "",
        generate_name: str = "",
        labels: Mapping[str, str] | None = None,
        request_id: str = "",
    ) -> Workflow:
        return self._run(
            self._client.submit(
                source,
                parameters=parameters,
                entrypoint=entrypoint,
                generate_name=generate_name,
                labels=labels,
                request_id=request_id,
            )
        )

    def lint(self, source: Source, *, parameters: Mapping[str, str] | None = None) -> Workflow:
        return self._run(self._client.lint(source, parameters=parameters))

    def get(self, name: str) -> Workflow:
        return self._run(self._client.get(name))

    def delete(self, name: str, *, request_id: str = "") -> None:
        self._run(self._client.delete(name, request_id=request_id))

    def list(self, *, page_size: int = 0, filters: ListFilter | None = None) -> builtins.list[Workflow]:
        return builtins.list(self._iterate(self._client.list(page_size=page_size, filters=filters)))

    def watch(self, name: str, *, resource_version: str = "", timeout: float | None = None) -> Iterator[Workflow]:
        return self._iterate(self._client.watch(name, resource_version=resource_version, timeout=timeout))

    def logs(self, name: str, *, node: str = "", follow: bool = False) -> Iterator[LogLine]:
        return self._iterate(self._client.logs(name, node=node, follow=follow))

    def wait(self, name: str, *, timeout: float | None = None) -> Workflow:
        return self._run(self._client.wait(name, timeout=timeout))

    # -- lifecycle ----------------------------------------------------------------

    def suspend(self, name: str, *, request_id: str = "") -> Workflow:
        return self._run(self._client.suspend(name, request_id=request_id))

    def resume(self, name: str, *, node: str = "", request_id: str = "") -> Workflow:
        return self._run(self._client.resume(name, node=node, request_id=request_id))

    def stop(self, name: str, *, message: str = "", request_id: str = "") -> Workflow:
        return self._run(self._client.stop(name, message=message, request_id=request_id))

    def terminate(self, name: str, *, message: str = "", request_id: str = "") -> Workflow:
        return self._run(self._client.terminate(name, message=message, request_id=request_id))

    def set_node(
        self,
        name: str,
        node: str,
        *,
        parameters: Mapping[str, str] | None = None,
        phase: NodePhaseLike = "",
        message: str = "",
        request_id: str = "",
    ) -> Workflow:
        return self._run(
            self._client.set_node(
                name, node, parameters=parameters, phase=phase, message=message, request_id=request_id
            )
        )

    def retry(self, name: str, *, request_id: str = "") -> Workflow:
        return self._run(self._client.retry(name, request_id=request_id))

    def resubmit(self, name: str, *, parameters: Mapping[str, str] | None = None, request_id: str = "") -> Workflow:
        return self._run(self._client.resubmit(name, parameters=parameters, request_id=request_id))

    # -- WorkflowTemplates ----------------------------------------------------------

    def create_template(self, source: TemplateSource, *, request_id: str = "") -> WorkflowTemplate:
        return self._run(self._client.create_template(source, request_id=request_id))

    def get_template(self, name: str) -> WorkflowTemplate:
        return self._run(self._client.get_template(name))

    def list_templates(self, *, page_size: int = 0) -> builtins.list[WorkflowTemplate]:
        return builtins.list(self._iterate(self._client.list_templates(page_size=page_size)))

    def update_template(
        self, source: TemplateSource, *, resource_version: str = "", request_id: str = ""
    ) -> WorkflowTemplate:
        return self._run(self._client.update_template(source, resource_version=resource_version, request_id=request_id))

    def delete_template(self, name: str, *, request_id: str = "") -> None:
        self._run(self._client.delete_template(name, request_id=request_id))

    def lint_template(self, source: TemplateSource) -> WorkflowTemplate:
        return self._run(self._client.lint_template(source))

    # -- semaphores -----------------------------------------------------------------

    def set_semaphore(self, name: str, limit: int) -> None:
        self._run(self._client.set_semaphore(name, limit))

    def delete_semaphore(self, name: str) -> None:
        self._run(self._client.delete_semaphore(name))

    def list_locks(self) -> builtins.list[Lock]:
        return self._run(self._client.list_locks())
