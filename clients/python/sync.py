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
from treadle.grpcutil.channels import DEFAULT_TIMEOUT
from treadle.workflow.v1.workflow_pb2 import Workflow

T = TypeVar("T")


class SyncTreadleClient:
    """The methods of TreadleClient, blocking; streams become plain iterators."""

    def __init__(self, address: str, *, timeout: float = DEFAULT_TIMEOUT, logs_timeout: float = LOGS_TIMEOUT) -> None:
        self._runner = asyncio.Runner()
        self._client = TreadleClient(address, timeout=timeout, logs_timeout=logs_timeout)

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

    def logs(self, name: str, *, node: str = "") -> Iterator[LogLine]:
        return self._iterate(self._client.logs(name, node=node))

    def wait(self, name: str, *, timeout: float | None = None) -> Workflow:
        return self._run(self._client.wait(name, timeout=timeout))
