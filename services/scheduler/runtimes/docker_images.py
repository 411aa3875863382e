"""Creating a container as its imagePullPolicy says, without ever orphaning one.

IfNotPresent (the default here) creates the container and pulls only when the
engine has no such image; Never does not pull; Always pulls first. Each failure
says which image, on which engine, and why. A pod cancelled while the engine
creates a container still learns the container's id, so that it removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from treadle.services.scheduler.runtimes.docker_engine import (
    ContainerConfig,
    DockerEngine,
    EngineError,
    NameConflict,
    NoSuchImage,
)

log = logging.getLogger(__name__)


class ImagePuller:
    """Pulls each image once at a time, however many steps ask for it together."""

    def __init__(self, engine: DockerEngine) -> None:
        self._engine = engine
        self._pulls: dict[str, asyncio.Task[None]] = {}

    async def pull(self, image: str) -> None:
        task = self._pulls.get(image)
        if task is None:
            task = self._pulls[image] = asyncio.create_task(self._engine.pull(image), name=f"pull {image}")
            task.add_done_callback(lambda _: self._pulls.pop(image, None))
        await asyncio.shield(task)


class ContainerMaker:
    """Creates one pod's containers; `created` lists every container id it made, in order."""

    def __init__(self, engine: DockerEngine, puller: ImagePuller) -> None:
        self._engine = engine
        self._puller = puller
        self.created: list[str] = []

    async def create(self, config: ContainerConfig, policy: str, role: str) -> str:
        if policy == "Always":
            await self._pull(config.image, policy, role)
        try:
            return await self._create_once(config)
        except NoSuchImage:
            if policy != "IfNotPresent":
                where = f"the Docker engine at {self._engine.address}"
                raise EngineError(
                    f"{role}: image {config.image!r} is not present on {where} and imagePullPolicy is {policy}"
                ) from None
            await self._pull(config.image, policy, role)
            return await self._create_once(config)

    async def _create_once(self, config: ContainerConfig) -> str:
        try:
            return await self._create_shielded(config)
        except NameConflict:  # left by an earlier run of this very attempt (a crash between create and remove)
            log.info("removing a leftover container %s before creating it again", config.name)
            await self._engine.remove(config.name)
            return await self._create_shielded(config)

    async def _create_shielded(self, config: ContainerConfig) -> str:
        """The engine goes on creating a container when the pod is cancelled meanwhile: keep its id, to remove it."""
        creating = asyncio.ensure_future(self._engine.create_container(config))
        try:
            container = await asyncio.shield(creating)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                self.created.append(await creating)
            raise
        self.created.append(container)
        return container

    async def _pull(self, image: str, policy: str, role: str) -> None:
        try:
            await self._puller.pull(image)
        except (EngineError, TimeoutError) as exc:
            if policy == "Always":
                raise EngineError(f"{role}: pulling image {image!r} (imagePullPolicy Always) failed: {exc}") from None
            where = f"the Docker engine at {self._engine.address}"
            raise EngineError(
                f"{role}: image {image!r} is not present on {where} and pulling it failed: {exc}"
            ) from None
