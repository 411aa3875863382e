"""Hosting treadle's services: one gRPC server for one service or all four, and the `serve` command.

    treadle serve all --listen 127.0.0.1:7733
    treadle serve outputs --listen 0.0.0.0:7736 --scheduler scheduler:7735
    python -m treadle.services all            # the same, without the CLI

Every service in a process shares one SQLite connection (each with its own
tables) and one step-token secret. The server starts first; then each app
starts with the addresses of its peers, the ones it hosts being its own.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sqlite3
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from treadle.auth import StepTokens, load_or_create_secret
from treadle.config import DEFAULT_PORT, ServerConfig, ServiceAddresses, default_data_dir
from treadle.grpcutil.server import RunningServer, create_server, wait_for_termination
from treadle.services.app import ServiceApp
from treadle.store.sqlite import open_database

log = logging.getLogger(__name__)

SERVICES = ("admission", "scheduler", "artifacts", "outputs")
ALL = "all"
# Apps start in this order, so that a service's peers are up before it calls them.
START_ORDER = ("artifacts", "outputs", "scheduler", "admission")
_WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")


@dataclass
class Stack:
    """A running server and the apps it hosts."""

    server: RunningServer
    apps: dict[str, ServiceApp]
    conn: sqlite3.Connection
    # host:port at which this process's services are reached (loopback when listening on a wildcard).
    address: str
    # Every service's address, this process's own ones included.
    addresses: ServiceAddresses
    _stopped: bool = field(default=False, repr=False)

    @property
    def port(self) -> int:
        return self.server.port

    async def stop(self, grace: float = 5.0) -> None:
        """Drain (NOT_SERVING, then stop taking calls and let those in flight finish), then stop the apps."""
        if self._stopped:
            return
        self._stopped = True
        await self.server.drain(grace)
        await _stop_apps(list(self.apps.values()))
        self.conn.close()


def resolve_services(which: Sequence[str]) -> list[str]:
    """The service names `which` asks for, in start order."""
    unknown = [name for name in which if name != ALL and name not in SERVICES]
    if unknown or not which:
        raise ValueError(f"unknown service(s) {unknown}; choose from {ALL}, {', '.join(SERVICES)}")
    wanted = set(SERVICES) if ALL in which else set(which)
    return [name for name in START_ORDER if name in wanted]


# Each builder imports its service on demand: a process hosting one service loads only that service's code.
def _build_admission(config: ServerConfig, conn: sqlite3.Connection, tokens: StepTokens) -> ServiceApp:
    from treadle.services.admission.setup import build

    return build(config, conn, tokens)


def _build_scheduler(config: ServerConfig, conn: sqlite3.Connection, tokens: StepTokens) -> ServiceApp:
    from treadle.services.scheduler.setup import build

    return build(config, conn, tokens)


def _build_artifacts(config: ServerConfig, conn: sqlite3.Connection, tokens: StepTokens) -> ServiceApp:
    from treadle.services.artifacts.setup import build

    return build(config, tokens)  # its state is the artifact store, not SQLite


def _build_outputs(config: ServerConfig, conn: sqlite3.Connection, tokens: StepTokens) -> ServiceApp:
    from treadle.services.outputs.setup import build

    return build(config, conn, tokens)


Builder = Callable[[ServerConfig, sqlite3.Connection, StepTokens], ServiceApp]
BUILDERS: dict[str, Builder] = {
    "admission": _build_admission,
    "scheduler": _build_scheduler,
    "artifacts": _build_artifacts,
    "outputs": _build_outputs,
}


async def start_stack(config: ServerConfig, which: Sequence[str] = (ALL,)) -> Stack:
    names = resolve_services(which)
    conn = open_database(config.database)
    started: list[ServiceApp] = []
    server: RunningServer | None = None
    try:
        tokens = StepTokens(load_or_create_secret(config.token_secret_file))
        apps = {name: BUILDERS[name](config, conn, tokens) for name in names}
        server = await create_server([app.binding for app in apps.values()], config.listen)
        own = advertised_address(config.listen, server.port)
        addresses = dataclasses.replace(config.addresses, **{name: own for name in names})
        for app in apps.values():
            await app.start(addresses)
            started.append(app)
    except BaseException:
        if server is not None:
            await server.drain(0)
        await _stop_apps(started)
        conn.close()
        raise
    log.info("serving %s on %s", ", ".join(names), own)
    return Stack(server=server, apps=apps, conn=conn, address=own, addresses=addresses)


def advertised_address(listen: str, port: int) -> str:
    """How this process's services reach each other: the listen host, or loopback for a wildcard."""
    host = listen.rpartition(":")[0]
    return f"127.0.0.1:{port}" if host in _WILDCARD_HOSTS else f"{host}:{port}"


async def _stop_apps(apps: list[ServiceApp]) -> None:
    for app in reversed(apps):
        try:
            await app.stop()
        except Exception:
            log.exception("stopping %s failed", app.binding.name)


# ---------------------------------------------------------------------- the serve command


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "service", nargs="?", default=ALL, choices=(ALL, *SERVICES), help="what this process hosts (default: all)"
    )
    parser.add_argument(
        "--listen", default=f"127.0.0.1:{DEFAULT_PORT}", help="HOST:PORT to listen on; port 0 picks one"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help=f"state and artifacts (default: {default_data_dir()})"
    )
    parser.add_argument("--runtime", default="local", help="how the scheduler runs steps: local, docker or kubernetes")
    parser.add_argument(
        "--artifact-repository", default="", help="artifact store URI (default: file://DATA_DIR/artifacts)"
    )
    for name in SERVICES:
        parser.add_argument(
            f"--{name}", metavar="ADDR", default="", help=f"HOST:PORT of the {name} service when hosted elsewhere"
        )
    parser.add_argument("--port-file", type=Path, default=None, help="write the bound port here once serving")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        data_dir=args.data_dir or default_data_dir(),
        listen=args.listen,
        runtime=args.runtime,
        artifact_repository=args.artifact_repository,
        addresses=ServiceAddresses(**{name: getattr(args, name) for name in SERVICES}),
    )


def run_serve(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT; 0 after a clean shutdown, 1 when the server could not start."""
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = config_from_args(args)
    try:
        return asyncio.run(_serve(config, [args.service], args.port_file))
    except KeyboardInterrupt:
        return 0


async def _serve(config: ServerConfig, which: list[str], port_file: Path | None) -> int:
    try:
        stack = await start_stack(config, which)
    except (OSError, ValueError, RuntimeError) as exc:  # grpc reports a port it cannot bind as RuntimeError
        log.error("cannot start: %s", exc)
        return 1
    try:
        if port_file is not None:
            _write_atomically(port_file, f"{stack.port}\n")
        await wait_for_termination()
        log.info("shutting down")
    finally:
        await stack.stop()
    return 0


def _write_atomically(path: Path, text: str) -> None:
    """Readers polling for the file never see it half written."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


def serve_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="treadle serve", description="Run treadle's services.")
    add_serve_arguments(parser)
    return run_serve(parser.parse_args(argv))
