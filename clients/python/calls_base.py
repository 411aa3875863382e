"""What the call mixins (lifecycle_calls, template_calls, lock_calls) need from TreadleClient.

TreadleClient defines each of these; the stubs here only give the mixins, and
mypy, their shape.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, TypeVar

import grpc

from treadle.admission.v1 import admission_pb2_grpc as adm_grpc

if TYPE_CHECKING:
    from treadle.client.connection import ChannelSecurity

Request = TypeVar("Request")
Response = TypeVar("Response")


class CallerBase:
    address: str
    # Deadline of every unary call, in seconds.
    timeout: float
    # TLS and token of every channel; None is plaintext without a token.
    security: ChannelSecurity | None
    # Where SchedulerService is, for the semaphore calls; "" means address (as with `treadle serve all`).
    scheduler_address: str

    def _admission(self) -> adm_grpc.AdmissionServiceAsyncStub:
        raise NotImplementedError

    def _open_channel(self) -> grpc.aio.Channel:
        """The channel to address, opened on first use."""
        raise NotImplementedError

    async def _call(self, method: grpc.aio.UnaryUnaryMultiCallable[Request, Response], request: Request) -> Response:
        """method(request) with the client's deadline; failures become treadle.errors."""
        raise NotImplementedError


def fresh_request_id(request_id: str) -> str:
    """request_id, or a new uuid when the caller gave none (a retry must reuse the one it got)."""
    return request_id or str(uuid.uuid4())
