"""Client channels and deadlines for calls between treadle components."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from treadle.telemetry.interceptors import client_propagation

# Every internal call carries a deadline; streaming transfers get a longer one
# per call, chosen by the caller from the size it moves.
DEFAULT_TIMEOUT = 10.0
# Protobuf's own ceiling; large payloads travel as artifact chunks, not messages.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024


def open_channel(
    address: str,
    *,
    credentials: grpc.ChannelCredentials | None = None,
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.aio.Channel:
    """A channel to a treadle server: plaintext (the service mesh provides mTLS), or TLS with credentials.

    Every call carries the current trace context as W3C traceparent metadata;
    interceptors and options are added to treadle's own.
    """
    all_options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.enable_retries", 1),
        ("grpc.keepalive_time_ms", 30_000),
        *options,
    ]
    all_interceptors = [*client_propagation(), *interceptors]
    if credentials is None:
        return grpc.aio.insecure_channel(address, options=all_options, interceptors=all_interceptors)
    return grpc.aio.secure_channel(address, credentials, options=all_options, interceptors=all_interceptors)
