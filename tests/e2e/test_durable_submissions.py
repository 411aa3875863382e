"""A SubmitWorkflow that returned OK survives a kill -9 of the server.

Submissions commit with their fsync deferred and share one fdatasync (group commit,
treadle.store.durability); the handed-off marks share a transaction. Killed in the
middle of a burst, the server must come back with every acknowledged workflow, each
one with the scheduler (a lost mark only makes the reconciler hand it off again).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from pathlib import Path

from served import ServedTreadle

from treadle.client import TreadleClient
from treadle.workflow.v1 import workflow_pb2

HELD = json.dumps(
    {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "durable-"},
        "spec": {
            "entrypoint": "main",
            "suspend": True,
            "templates": [{"name": "main", "container": {"image": "busybox", "command": ["true"]}}],
        },
    },
    indent=1,
)
CLIENTS = 8
EACH = 15


def test_acknowledged_submissions_survive_a_kill_9(tmp_path: Path) -> None:
    server = ServedTreadle(tmp_path)
    acknowledged: list[str] = []
    in_flight: list[asyncio.Task[workflow_pb2.Workflow]] = []
    try:

        async def burst() -> None:
            async with TreadleClient(server.address) as client:

                async def submit_some() -> None:
                    for _ in range(EACH):
                        workflow = await client.submit(HELD)
                        acknowledged.append(workflow.metadata.name)

                await asyncio.gather(*(submit_some() for _ in range(CLIENTS)))
                # More in flight when the server dies: these may or may not have been stored.
                in_flight.extend(asyncio.create_task(client.submit(HELD)) for _ in range(CLIENTS))
                await asyncio.sleep(0.005)
                server.process.send_signal(signal.SIGKILL)
                for task in in_flight:
                    with contextlib.suppress(Exception):  # cut off by the kill: not acknowledged
                        acknowledged.append((await task).metadata.name)

        asyncio.run(burst())
        assert server.process.wait(10) == -signal.SIGKILL
    finally:
        server.stop()
    assert len(acknowledged) >= CLIENTS * EACH

    restarted = ServedTreadle(tmp_path)
    try:

        async def check() -> dict[str, workflow_pb2.Workflow]:
            async with TreadleClient(restarted.address) as client:
                for _ in range(100):  # the reconciler hands off what lost its mark
                    listed = {w.metadata.name: w async for w in client.list()}
                    pending = [n for n in acknowledged if listed[n].status.phase == workflow_pb2.WORKFLOW_PHASE_PENDING]
                    if not pending:
                        return listed
                    await asyncio.sleep(0.1)
                return listed

        listed = asyncio.run(check())
    finally:
        restarted.stop()
    missing = [name for name in acknowledged if name not in listed]
    assert not missing, f"{len(missing)} acknowledged submissions were lost: {missing[:5]}"
    for name in acknowledged:
        # With the scheduler, held (spec.suspend): Running, not Pending.
        assert listed[name].status.phase == workflow_pb2.WORKFLOW_PHASE_RUNNING, name
