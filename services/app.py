"""The shape every treadle service has: a binding to host, and a lifecycle.

Each service package (admission, scheduler, artifacts, outputs) exposes a
`setup.build(config, ...) -> ServiceApp`. `services.server` hosts one or all
of them on a gRPC server and starts them once it knows every address.
"""

from __future__ import annotations

from typing import Protocol

from treadle.config import ServiceAddresses
from treadle.grpcutil.server import ServiceBinding


class ServiceApp(Protocol):
    binding: ServiceBinding

    async def start(self, addresses: ServiceAddresses) -> None:
        """Open client channels to the other services and start background work."""

    async def stop(self) -> None:
        """Stop background work and close channels. Called after the server drained."""
