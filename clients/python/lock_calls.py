"""TreadleClient's semaphore calls: set_semaphore, delete_semaphore and list_locks.

Semaphores and mutexes are SchedulerService objects. `treadle serve all` hosts
it on the client's address; a scheduler that runs apart is reached through
scheduler_address.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass

import grpc

from treadle import errors
from treadle.client.calls_base import CallerBase, Request, Response
from treadle.client.connection import open_client_channel
from treadle.grpcutil.status import error_from_rpc
from treadle.scheduler.v1 import scheduler_pb2 as sch
from treadle.scheduler.v1 import scheduler_pb2_grpc as sch_grpc


@dataclass(frozen=True)
class Lock:
    """A semaphore or a held mutex, and who holds it."""

    # "semaphore/<configmap>/<key>" or "mutex/<name>".
    name: str
    # How many holders it allows at once.
    limit: int
    # "<workflow>" or "<workflow>/<node id>" of each holder, in the order they took it.
    holders: tuple[str, ...]

    @property
    def kind(self) -> str:
        """Either "semaphore" or "mutex"."""
        return self.name.partition("/")[0]


class LockCalls(CallerBase):
    _scheduler_channel: grpc.aio.Channel | None = None

    def _scheduler(self) -> sch_grpc.SchedulerServiceAsyncStub:
        if not self.scheduler_address or self.scheduler_address == self.address:
            return sch_grpc.SchedulerServiceStub(self._open_channel())
        if self._scheduler_channel is None:
            self._scheduler_channel = open_client_channel(self.scheduler_address, self.security)
        return sch_grpc.SchedulerServiceStub(self._scheduler_channel)

    async def _close_scheduler_channel(self) -> None:
        if self._scheduler_channel is not None:
            await self._scheduler_channel.close()
            self._scheduler_channel = None

    async def _scheduler_call(
        self, method: grpc.aio.UnaryUnaryMultiCallable[Request, Response], request: Request
    ) -> Response:
        try:
            return await method(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                where = self.scheduler_address or self.address
                raise errors.TreadleError(
                    f"{where} does not serve SchedulerService; give the scheduler's address "
                    "(--scheduler, or scheduler_address in the client)"
                ) from None
            raise error_from_rpc(exc) from None

    async def set_semaphore(self, name: str, limit: int) -> None:
        """Create or resize the semaphore "<configmap>/<key>" that templates name in synchronization."""
        request = sch.SetSemaphoreRequest(name=name, limit=limit)
        await self._scheduler_call(self._scheduler().SetSemaphore, request)

    async def delete_semaphore(self, name: str) -> None:
        """Delete a semaphore; workflows that name it afterwards fail with an error."""
        await self._scheduler_call(self._scheduler().DeleteSemaphore, sch.DeleteSemaphoreRequest(name=name))

    async def list_locks(self) -> builtins.list[Lock]:
        """Every semaphore and held mutex, by name."""
        response = await self._scheduler_call(self._scheduler().ListLocks, sch.ListLocksRequest())
        return [Lock(name=lock.name, limit=lock.limit, holders=tuple(lock.holders)) for lock in response.locks]
