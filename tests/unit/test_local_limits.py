"""The local runtime says what it cannot do (volumeMounts, sidecars, daemons, secret env) instead of ignoring it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from treadle.config import ServiceAddresses
from treadle.services.scheduler.runtimes.base import LaunchSpec, StepExit
from treadle.services.scheduler.runtimes.local import LocalRuntime
from treadle.services.scheduler.runtimes.local_limits import unsupported_on_local


@pytest.mark.parametrize(
    ("template", "named"),
    [
        (
            {"container": {"image": "busybox", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}},
            "container.volumeMounts",
        ),
        ({"container": {"image": "busybox"}, "sidecars": [{"name": "s", "image": "busybox"}]}, "sidecars"),
        ({"container": {"image": "busybox"}, "daemon": True}, "daemon: true"),
        (
            {"script": {"image": "busybox", "env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "s"}}}]}},
            "script.env[0].valueFrom (T)",
        ),
    ],
)
def test_what_the_local_runtime_refuses_is_named(template: dict[str, Any], named: str) -> None:
    message = unsupported_on_local({"name": "weave", **template})
    assert message is not None
    assert named in message and "'weave'" in message and "--runtime docker" in message


def test_resources_and_plain_steps_run_locally() -> None:
    resources = {"limits": {"cpu": "1", "memory": "1Gi"}}
    assert unsupported_on_local({"name": "t", "container": {"image": "busybox", "resources": resources}}) is None


def test_the_local_runtime_ends_such_a_step_without_starting_anything(tmp_path: Path) -> None:
    async def scenario() -> StepExit:
        exits: asyncio.Queue[StepExit] = asyncio.Queue()
        runtime = LocalRuntime(tmp_path / "steps")

        async def on_exit(step_exit: StepExit) -> None:
            await exits.put(step_exit)

        await runtime.start(on_exit)
        try:
            template = {
                "name": "t",
                "container": {"image": "busybox", "volumeMounts": [{"name": "v", "mountPath": "/v"}]},
            }
            spec = LaunchSpec("wf", "uid", "wf-1", "wf-1", 0, "token", ServiceAddresses(), template=template)
            await runtime.launch(spec)
            return await asyncio.wait_for(exits.get(), 5)
        finally:
            await runtime.close()

    step_exit = asyncio.run(scenario())
    assert (step_exit.workflow, step_exit.node_id, step_exit.attempt, step_exit.reported) == ("wf", "wf-1", 0, False)
    assert "container.volumeMounts" in step_exit.message
    assert not (tmp_path / "steps").exists()  # no executor host was started
