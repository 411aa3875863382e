"""A typed, asynchronous façade over the Docker SDK's low-level API.

The SDK is synchronous (HTTP over the engine's socket) and untyped. Every call
here runs in the façade's own thread pool, so that many steps waiting on their
containers never starve the event loop's default executor, and every call has
a deadline: API_TIMEOUT_SECONDS, or the one the caller gives (wait, pull).
The SDK's exceptions become the few below, each with the engine's own words.
The rest of the Docker runtime touches the SDK only through this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import docker
import docker.errors
import requests.exceptions
from docker.utils import kwargs_from_env

from treadle.errors import TreadleError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Docker Engine 20.10 and newer speak this API version; pinning it spares a round trip at start.
API_VERSION = "1.41"
API_TIMEOUT_SECONDS = 30.0
PULL_TIMEOUT_SECONDS = 300.0
# Calls (mostly waits on running containers) that may be in flight at once.
MAX_CONCURRENT_CALLS = 256
ARCHIVE_CHUNK_BYTES = 1024 * 1024


class EngineError(TreadleError):
    """The Docker engine refused or failed a call; str() is the engine's explanation."""


class EngineUnreachable(EngineError):
    """The engine does not answer: it is stopped or restarting, or DOCKER_HOST points elsewhere."""


class EngineTimeout(EngineError):
    """A call outlived the deadline the caller gave it."""


class NoSuchObject(EngineError):
    """The container, image, file, network or volume does not exist (HTTP 404)."""


class NoSuchImage(NoSuchObject):
    """The image is not present on the engine."""


class NameConflict(EngineError):
    """A container, network or volume with that name exists already (HTTP 409)."""


@dataclass(frozen=True)
class ContainerState:
    """What `docker inspect` says of a container's process."""

    running: bool
    exit_code: int
    oom_killed: bool
    # The engine's own error for a container that could not run (empty otherwise).
    error: str
    status: str


@dataclass(frozen=True)
class Mount:
    """A named volume or a host path inside a container."""

    target: str
    source: str
    kind: str  # "volume" or "bind"
    read_only: bool = False


@dataclass(frozen=True)
class ContainerConfig:
    """Everything the engine needs to create one container; built by docker_plan."""

    name: str
    image: str
    labels: dict[str, str]
    # None keeps the image's ENTRYPOINT / CMD.
    entrypoint: list[str] | None = None
    command: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict, repr=False)  # may hold secret values
    working_dir: str = ""
    mounts: tuple[Mount, ...] = ()
    # A user-defined network to attach to, "container:<id>" to share another container's, "none", or
    # "" for the engine's default (its bridge, as for a bare `docker run`).
    network: str = ""
    memory_bytes: int | None = None
    memory_reservation_bytes: int | None = None
    nano_cpus: int | None = None
    cpu_shares: int | None = None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, docker.errors.APIError):
        explanation = exc.explanation
        if isinstance(explanation, bytes):
            explanation = explanation.decode("utf-8", errors="replace")
        return str(explanation or exc).strip()
    return str(exc).strip() or type(exc).__name__


def _translate(exc: BaseException) -> BaseException:
    """The façade's exception for one the SDK, requests or the socket raised; others pass through."""
    if isinstance(exc, docker.errors.ImageNotFound):
        return NoSuchImage(_describe(exc))
    if isinstance(exc, docker.errors.NotFound):
        return NoSuchObject(_describe(exc))
    if isinstance(exc, docker.errors.APIError):
        if exc.status_code == 409:
            return NameConflict(_describe(exc))
        return EngineError(_describe(exc))
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return EngineTimeout(_describe(exc))
    if isinstance(exc, (requests.exceptions.ConnectionError, ConnectionError, docker.errors.DockerException)):
        return EngineUnreachable(_describe(exc))
    return exc


class DockerEngine:
    """One Docker engine, reached through its API. Thread-safe; calls are coroutines."""

    def __init__(self, api: Any, address: str) -> None:
        self._api = api
        # Where the engine is, for messages (unix:///var/run/docker.sock, tcp://host:2376).
        self.address = address
        self._pool = ThreadPoolExecutor(max_workers=MAX_CONCURRENT_CALLS, thread_name_prefix="docker-api")

    @classmethod
    def connect(cls, docker_host: str = "") -> DockerEngine:
        """A client for docker_host, else DOCKER_HOST (with DOCKER_TLS_VERIFY, DOCKER_CERT_PATH), else the default."""
        kwargs: dict[str, Any] = dict(kwargs_from_env())
        if docker_host:
            kwargs["base_url"] = docker_host
        address = str(kwargs.get("base_url") or "unix:///var/run/docker.sock")
        try:
            api = docker.APIClient(
                version=API_VERSION, timeout=int(API_TIMEOUT_SECONDS), max_pool_size=MAX_CONCURRENT_CALLS, **kwargs
            )
        except docker.errors.DockerException as exc:
            raise EngineUnreachable(f"cannot use the Docker engine at {address}: {_describe(exc)}") from None
        return cls(api, address)

    async def _call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            return await loop.run_in_executor(self._pool, functools.partial(function, *args, **kwargs))
        except Exception as exc:
            translated = _translate(exc)
            if translated is exc:
                raise
            if isinstance(translated, EngineUnreachable):
                raise EngineUnreachable(f"the Docker engine at {self.address} does not answer: {translated}") from None
            raise translated from None
        finally:
            log.debug("docker %s: %.1f ms", getattr(function, "__name__", "call"), (loop.time() - started) * 1000)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._api.close()

    # -- the engine --------------------------------------------------------------------

    async def ping(self) -> None:
        await self._call(self._api.ping)

    async def wait_until_reachable(self, seconds: float, pause: float = 0.5) -> bool:
        """Ping until the engine answers (True) or `seconds` have passed (False)."""
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + seconds
        while True:
            try:
                await self.ping()
                return True
            except EngineError:
                if loop.time() >= give_up_at:
                    return False
                await asyncio.sleep(pause)

    # -- images ---------------------------------------------------------------------------

    async def pull(self, image: str) -> None:
        """Pull image (repository[:tag] or @digest); the engine's error when it cannot."""
        repository, tag = split_image(image)

        def pull_all() -> None:
            # decode=True yields the progress messages; an error arrives as one of them, not as an HTTP status.
            for message in self._api.pull(repository, tag=tag, stream=True, decode=True):
                if isinstance(message, dict) and message.get("error"):
                    raise EngineError(str(message["error"]))

        await asyncio.wait_for(self._call(pull_all), PULL_TIMEOUT_SECONDS)

    # -- containers -------------------------------------------------------------------------

    async def create_container(self, config: ContainerConfig) -> str:
        """Create (not start) a container; its id."""
        api = self._api
        network_mode = config.network or None
        host_config = api.create_host_config(
            mounts=[
                docker.types.Mount(m.target, m.source, type="volume", read_only=m.read_only)
                for m in config.mounts
                if m.kind == "volume"
            ],
            binds=[f"{m.source}:{m.target}:{'ro' if m.read_only else 'rw'}" for m in config.mounts if m.kind == "bind"],
            network_mode=network_mode,
            mem_limit=config.memory_bytes,
            # Kubernetes gives a container no swap: its memory limit is its whole allowance.
            memswap_limit=config.memory_bytes,
            mem_reservation=config.memory_reservation_bytes,
            nano_cpus=config.nano_cpus,
            cpu_shares=config.cpu_shares,
        )
        attach_to = config.network not in ("", "none") and not config.network.startswith("container:")
        networking = api.create_networking_config({config.network: api.create_endpoint_config()}) if attach_to else None
        created: dict[str, Any] = await self._call(
            api.create_container,
            config.image,
            command=config.command,
            entrypoint=config.entrypoint,
            environment=config.env,
            working_dir=config.working_dir or None,
            labels=config.labels,
            name=config.name,
            host_config=host_config,
            networking_config=networking,
        )
        return str(created["Id"])

    async def start(self, container: str) -> None:
        await self._call(self._api.start, container)

    async def wait(self, container: str, timeout: float) -> int:
        """The exit code once the container stops. EngineTimeout after `timeout` seconds."""
        result: dict[str, Any] = await self._call(self._api.wait, container, timeout=timeout)
        return int(result.get("StatusCode", -1))

    async def state(self, container: str) -> ContainerState:
        info: dict[str, Any] = await self._call(self._api.inspect_container, container)
        state = info.get("State") or {}
        return ContainerState(
            running=bool(state.get("Running")),
            exit_code=int(state.get("ExitCode") or 0),
            oom_killed=bool(state.get("OOMKilled")),
            error=str(state.get("Error") or ""),
            status=str(state.get("Status") or ""),
        )

    async def address_on(self, container: str, network: str) -> str:
        """The container's IP address on a user-defined network ("" when it has none)."""
        info: dict[str, Any] = await self._call(self._api.inspect_container, container)
        networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
        return str((networks.get(network) or {}).get("IPAddress") or "")

    async def stop(self, container: str, grace_seconds: float) -> None:
        """SIGTERM (or the image's stop signal), then SIGKILL after grace_seconds. A gone container is fine."""
        with contextlib.suppress(NoSuchObject):
            await self._call(self._api.stop, container, timeout=max(0, round(grace_seconds)))

    async def signal(self, container: str, signal: str) -> None:
        """Send a signal (SIGTERM, SIGKILL, ...) to the container's main process; a stopped or gone one is fine."""
        try:
            await self._call(self._api.kill, container, signal=signal)
        except NoSuchObject:
            pass
        except EngineError as exc:
            if "is not running" not in str(exc):
                raise

    async def remove(self, container: str) -> None:
        """Kill and remove the container with its anonymous volumes; a gone one is fine."""
        try:
            await self._call(self._api.remove_container, container, v=True, force=True)
        except NoSuchObject:
            pass
        except EngineError as exc:
            if "already in progress" not in str(exc):
                raise

    async def logs(self, container: str, *, stdout: bool, stderr: bool) -> bytes:
        data: bytes = await self._call(self._api.logs, container, stdout=stdout, stderr=stderr)
        return data

    async def save_logs(self, container: str, path: Path) -> None:
        """Write stdout and stderr, interleaved as the engine recorded them, to path."""

        def save() -> None:
            with path.open("wb") as sink:
                for chunk in self._api.logs(container, stdout=True, stderr=True, stream=True, follow=False):
                    sink.write(chunk)

        await self._call(save)

    async def follow_logs(self, container: str, on_chunk: Callable[[bytes], None]) -> None:
        """Call on_chunk (in a worker thread) with each piece of output, from the start, until the container stops."""

        def follow() -> None:
            for chunk in self._api.logs(container, stdout=True, stderr=True, stream=True, follow=True):
                on_chunk(chunk)

        await self._call(follow)

    async def put_archive(self, container: str, path: str, tar: IO[bytes]) -> None:
        """Extract an (uncompressed) tar stream into the container's filesystem at path."""
        await self._call(self._api.put_archive, container, path, tar)

    async def get_archive(self, container: str, path: str, sink: IO[bytes]) -> None:
        """Write a tar stream of path (a file or a directory, by its base name) to sink. NoSuchObject if absent."""

        def copy() -> None:
            chunks, _stat = self._api.get_archive(container, path, chunk_size=ARCHIVE_CHUNK_BYTES)
            for chunk in chunks:
                sink.write(chunk)

        await self._call(copy)

    async def containers(self, labels: dict[str, str]) -> list[str]:
        """Ids of every container (running or not) carrying all these labels."""
        filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
        found: list[dict[str, Any]] = await self._call(self._api.containers, all=True, filters=filters)
        return [str(c["Id"]) for c in found]

    # -- networks and volumes ---------------------------------------------------------

    async def create_network(self, name: str, labels: dict[str, str]) -> None:
        """A user-defined bridge network; NameConflict when it exists."""
        await self._call(self._api.create_network, name, driver="bridge", labels=labels, check_duplicate=True)

    async def networks(self, labels: dict[str, str]) -> list[str]:
        filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
        found: list[dict[str, Any]] = await self._call(self._api.networks, filters=filters)
        return [str(n["Name"]) for n in found]

    async def remove_network(self, name: str) -> None:
        with contextlib.suppress(NoSuchObject):
            await self._call(self._api.remove_network, name)

    async def create_volume(self, name: str, labels: dict[str, str]) -> None:
        """A named local volume; creating one that exists changes nothing."""
        await self._call(self._api.create_volume, name, labels=labels)

    async def volumes(self, labels: dict[str, str]) -> list[str]:
        filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
        found: dict[str, Any] = await self._call(self._api.volumes, filters=filters)
        return [str(v["Name"]) for v in found.get("Volumes") or []]

    async def remove_volume(self, name: str) -> None:
        with contextlib.suppress(NoSuchObject):
            await self._call(self._api.remove_volume, name, force=True)


def split_image(image: str) -> tuple[str, str | None]:
    """("repo", "tag") from "repo:tag"; a digest ("repo@sha256:...") stays whole; no tag means latest."""
    if "@" in image:
        return image, None
    repository, colon, tag = image.rpartition(":")
    if colon and "/" not in tag:
        return repository, tag
    return image, "latest"
