"""One step, one process: ``python -m treadle.executor run ...``, for runtimes that start an executor per step.

    TREADLE_STEP_TOKEN=... python -m treadle.executor run --workflow W --node-id N --attempt A \\
        --scheduler ADDR --artifacts ADDR --outputs ADDR [--deadline-seconds S] [--sandbox MODE]

Exits 0 once the step's report reached OutputService (whatever the step's
phase), 1 when it could not be reported (the reason is printed on stderr), 2
for bad usage. TRACEPARENT, when set, is forwarded with every call.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

from treadle.executor.host import EXECUTOR_SERVICE_NAME, SANDBOX_CHOICES, choose_sandbox
from treadle.executor.launch import StepLaunch
from treadle.executor.rpc import ServiceChannels
from treadle.executor.spawner import Spawner
from treadle.executor.step import StepOutcome, StepRunner
from treadle.telemetry.context import TRACEPARENT_ENV
from treadle.telemetry.logs import configure_logging
from treadle.telemetry.providers import configure_telemetry

TOKEN_ENV = "TREADLE_STEP_TOKEN"


async def run_once(launch: StepLaunch, steps_dir: Path, sandbox: str) -> StepOutcome:
    spawner = Spawner()
    channels = ServiceChannels()
    try:
        mode = await choose_sandbox(sandbox, spawner, steps_dir)
        return await StepRunner(channels, spawner, steps_dir, mode).run(launch)
    finally:
        await spawner.close()
        await channels.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m treadle.executor", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run one step attempt and report it")
    run.add_argument("--workflow", required=True)
    run.add_argument("--node-id", required=True)
    run.add_argument("--attempt", type=int, required=True)
    run.add_argument("--scheduler", required=True, help="SchedulerService host:port")
    run.add_argument("--artifacts", required=True, help="ArtifactService host:port")
    run.add_argument("--outputs", required=True, help="OutputService host:port")
    run.add_argument("--deadline-seconds", type=float, default=None)
    run.add_argument("--steps-dir", type=Path, default=None, help="default: a temporary directory")
    run.add_argument("--sandbox", choices=SANDBOX_CHOICES, default="auto")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(os.environ.get("TREADLE_LOG_LEVEL", "INFO"), service=EXECUTOR_SERVICE_NAME)
    token = os.environ.pop(TOKEN_ENV, "")
    if not token:
        print(f"executor: {TOKEN_ENV} is not set", file=sys.stderr)
        return 2
    launch = StepLaunch(
        workflow=args.workflow,
        node_id=args.node_id,
        attempt=args.attempt,
        token=token,
        scheduler=args.scheduler,
        artifacts=args.artifacts,
        outputs=args.outputs,
        deadline_seconds=args.deadline_seconds,
        traceparent=os.environ.get(TRACEPARENT_ENV, ""),
    )
    steps_dir = args.steps_dir or Path(tempfile.mkdtemp(prefix="treadle-step-"))
    telemetry = configure_telemetry(EXECUTOR_SERVICE_NAME)
    try:
        outcome = asyncio.run(run_once(launch, steps_dir.resolve(), args.sandbox))
    finally:
        telemetry.shutdown()  # export this step's spans before the process ends
        if args.steps_dir is None:
            shutil.rmtree(steps_dir, ignore_errors=True)
    if not outcome.reported:
        print(f"executor: the step was not reported: {outcome.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
