"""Hosting treadle's services: one gRPC server for one service or all four, and the `serve` command.

    treadle serve all --listen 127.0.0.1:7733
    treadle serve outputs --listen 0.0.0.0:7736 --scheduler scheduler:7735
    python -m treadle.services all            # the same, without the CLI

Every service in a process shares one SQLite connection (each with its own
tables) and one step-token secret. The server starts first; then each app
starts with the addresses of its peers, the ones it hosts being its own.

SIGTERM (or SIGINT) drains the server (see services/draining.py): every
service reports NOT_SERVING, calls in flight finish within --grace-period
seconds, and the process exits 0. A second signal ends it at once.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from grpc_health.v1 import health_pb2

from treadle.auth import StepTokens, load_or_create_secret
from treadle.config import DEFAULT_PORT, ServerConfig, ServiceAddresses, default_data_dir
from treadle.grpcutil import inprocess
from treadle.grpcutil.server import RunningServer, create_server, wait_for_termination
from treadle.services.app import ServiceApp
from treadle.services.draining import CallGate
from treadle.store.sqlite import open_database

log = logging.getLogger(__name__)

SERVICES = ("admission", "scheduler", "artifacts", "outputs", "templates")
ALL = "all"
# Apps start in this order, so that a service's peers are up before it calls them.
START_ORDER = ("artifacts", "outputs", "scheduler", "templates", "admission")
_WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")
# Seconds that calls in flight get to finish once a shutdown begins.
DEFAULT_GRACE_PERIOD = 10.0
# Drained first: the public API, whose calls in flight need the other services to finish.
FRONT_SERVICES = ("admission",)


@runtime_checkable
class Drainable(Protocol):
    """An app with calls that would outlive any grace period (watches): it ends them when asked."""

    def begin_drain(self) -> None: ...


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
    # Counts calls in flight and turns new ones away while draining.
    gate: CallGate
    _stopped: bool = field(default=False, repr=False)

    @property
    def port(self) -> int:
        return self.server.port

    async def stop(self, grace: float = DEFAULT_GRACE_PERIOD) -> None:
        """Drain in stages (services/draining.py), then stop the apps.

        Every service reports NOT_SERVING. The front services stop taking calls and end their watches,
        and their other calls in flight finish while the services they call still answer. Then the
        server stops taking calls and lets the rest finish within what is left of grace.
        """
        if self._stopped:
            return
        self._stopped = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        for name in ("", *self.server.service_names):
            await self.server.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        front = [app.binding.name for name, app in self.apps.items() if name in FRONT_SERVICES]
        self.gate.close(front)
        for app in self.apps.values():
            if isinstance(app, Drainable):
                app.begin_drain()
        if not await self.gate.wait_idle(front, max(0.0, deadline - loop.time())):
            log.warning("calls to %s were still in flight when the grace period ended", ", ".join(front))
        await self.server.drain(max(0.0, deadline - loop.time()))
        await _stop_apps(list(self.apps.values()))
        inprocess.unhost(self.address)
        self.conn.close()


def resolve_services(which: Sequence[str]) -> list[str]:
    """The service names `which` asks for, in start order."""
    unknown = [name for name in which if name != ALL and name not in SERVICES]
    if unknown or not which:
        raise ValueError(f"unknown service(s) {unknown}; choose from {ALL}, {', '.join(SERVICES)}")
    wanted = set(SERVICES) if ALL in which else set(which)
    if "admission" in wanted:
        wanted.add("templates")  # admission resolves templateRefs; the templates live beside it
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


def _build_templates(config: ServerConfig, conn: sqlite3.Connection, tokens: StepTokens) -> ServiceApp:
    from treadle.services.templates.setup import build

    return build(config, conn)


Builder = Callable[[ServerConfig, sqlite3.Connection, StepTokens], ServiceApp]
BUILDERS: dict[str, Builder] = {
    "admission": _build_admission,
    "scheduler": _build_scheduler,
    "artifacts": _build_artifacts,
    "outputs": _build_outputs,
    "templates": _build_templates,
}


async def start_stack(config: ServerConfig, which: Sequence[str] = (ALL,)) -> Stack:
    names = resolve_services(which)
    conn = open_database(config.database)
    started: list[ServiceApp] = []
    server: RunningServer | None = None
    own = ""
    try:
        tokens = StepTokens(load_or_create_secret(config.token_secret_file))
        apps = {name: BUILDERS[name](config, conn, tokens) for name in names}
        gate = CallGate(app.binding.name for app in apps.values())
        server = await create_server([app.binding for app in apps.values()], config.listen, interceptors=[gate])
        own = advertised_address(config.listen, server.port)
        addresses = dataclasses.replace(config.addresses, **{name: own for name in names})
        for app in apps.values():
            inprocess.host(own, app.binding.name, app.binding.servicer)
        for app in apps.values():
            await app.start(addresses)
            started.append(app)
    except BaseException:
        if server is not None:
            inprocess.unhost(own)
            await server.drain(0)
        await _stop_apps(started)
        conn.close()
        raise
    log.info("serving %s on %s", ", ".join(names), own)
    return Stack(server=server, apps=apps, conn=conn, address=own, addresses=addresses, gate=gate)


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
    parser.add_argument("--runtime", default="local", help="how the scheduler runs steps: local (default) or docker")
    parser.add_argument(
        "--docker-host", default="", metavar="URL", help="the Docker engine of --runtime docker (default: DOCKER_HOST)"
    )
    parser.add_argument(
        "--secrets-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="secrets for env valueFrom.secretKeyRef, as files DIR/NAME/KEY (default: DATA_DIR/secrets)",
    )
    parser.add_argument(
        "--artifact-repository", default="", help="artifact store URI (default: file://DATA_DIR/artifacts)"
    )
    parser.add_argument(
        "--artifact-repositories",
        default="",
        metavar="FILE",
        help="YAML file of named artifact repositories for artifactRepositoryRef (docs/artifacts.md; "
        "default: TREADLE_ARTIFACT_REPOSITORIES)",
    )
    for name in SERVICES:
        parser.add_argument(
            f"--{name}", metavar="ADDR", default="", help=f"HOST:PORT of the {name} service when hosted elsewhere"
        )
    parser.add_argument("--port-file", type=Path, default=None, help="write the bound port here once serving")
    parser.add_argument(
        "--grace-period",
        type=float,
        default=DEFAULT_GRACE_PERIOD,
        metavar="SECONDS",
        help=f"on SIGTERM, how long calls in flight may take to finish (default: {DEFAULT_GRACE_PERIOD:g})",
    )
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    parser.add_argument(
        "--log-format", default="json", choices=("json", "text"), help="json lines with trace ids (default), or text"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics at http://LISTEN_HOST:PORT/metrics (see also the OTEL_* variables)",
    )


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        data_dir=args.data_dir or default_data_dir(),
        listen=args.listen,
        runtime=args.runtime,
        artifact_repository=args.artifact_repository,
        artifact_repositories=args.artifact_repositories,
        addresses=ServiceAddresses(**{name: getattr(args, name) for name in SERVICES}),
        docker_host=args.docker_host,
        secrets_dir=args.secrets_dir,
    )


def run_serve(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT; 0 after a clean shutdown, 1 when the server could not start."""
    from treadle.telemetry.process import host_of, observe_process

    service = "treadle" if args.service == ALL else f"treadle-{args.service}"
    try:
        telemetry = observe_process(
            service,
            log_level=args.log_level,
            log_format=args.log_format,
            metrics_port=args.metrics_port,
            metrics_host=host_of(args.listen),
        )
    except (OSError, ValueError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    config = config_from_args(args)
    try:
        return asyncio.run(_serve(config, [args.service], args.port_file, args.grace_period))
    except KeyboardInterrupt:
        return 0
    finally:
        telemetry.shutdown()  # export the spans and metrics still batched


async def _serve(config: ServerConfig, which: list[str], port_file: Path | None, grace_period: float) -> int:
    try:
        stack = await start_stack(config, which)
    except (OSError, ValueError, RuntimeError) as exc:  # grpc reports a port it cannot bind as RuntimeError
        log.error("cannot start: %s", exc)
        return 1
    try:
        if port_file is not None:
            _write_atomically(port_file, f"{stack.port}\n")
        await wait_for_termination()
        log.info("shutting down: draining for up to %gs", grace_period)
    finally:
        await stack.stop(grace_period)
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
