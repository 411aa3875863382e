"""Client channels and deadlines for calls between treadle components."""

from __future__ import annotations

import grpc

from treadle.telemetry.interceptors import client_propagation

# Every internal call carries a deadline; streaming transfers get a longer one
# per call, chosen by the caller from the size it moves.
DEFAULT_TIMEOUT = 10.0
# Protobuf's own ceiling; large payloads travel as artifact chunks, not messages.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024


def open_channel(address: str) -> grpc.aio.Channel:
    """An insecure channel to a treadle server (the service mesh provides mTLS).

    Every call carries the current trace context as W3C traceparent metadata.
    """
    return grpc.aio.insecure_channel(
        address,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.enable_retries", 1),
            ("grpc.keepalive_time_ms", 30_000),
        ],
        interceptors=client_propagation(),
    )
