"""`treadle run`: start every service in this process, run one workflow, stop.

The stack listens on a free loopback port and keeps its state in a temporary
data directory (removed afterwards) unless --data-dir names one to keep. The
services' own output goes to run.log there, or to stderr with --verbose.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from treadle.client.commands import final_exit_code, print_workflow, server_invalid
from treadle.client.inputs import EXIT_SERVER_ERROR, CommandError, ManifestFile, parameters_dict, read_manifest
from treadle.errors import InvalidSpec

if TYPE_CHECKING:
    from treadle.client.client import LogLine
    from treadle.workflow.v1.workflow_pb2 import Workflow

STOP_GRACE = 2.0
# What the services print while `treadle run` runs, kept in the data directory.
LOG_FILE = "run.log"


@dataclass
class RunResult:
    workflow: Workflow
    log_lines: list[LogLine] = field(default_factory=list)


def run(args: argparse.Namespace) -> int:
    manifest = read_manifest(args.file)
    parameters = parameters_dict(args.parameters)
    # Bad input fails here, before any service starts, and so nothing is stored.
    manifest.validate(parameters=parameters, entrypoint=args.entrypoint)
    if args.verbose:
        import logging

        logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from treadle.telemetry.providers import configure_telemetry

    telemetry = configure_telemetry("treadle")  # OTEL_* as for `treadle serve`; off by default
    # Progress goes to the real stdout, which the services' output is kept away from (-o: no progress).
    progress = None if args.output else os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding=sys.stdout.encoding)
    try:
        with _data_dir(args.data_dir) as data_dir:
            with _service_output_to(None if args.verbose else data_dir / LOG_FILE):
                result = asyncio.run(_run_in_process(manifest, parameters, args, data_dir, progress))
    finally:
        if progress is not None:
            progress.close()
        telemetry.shutdown()
    for line in result.log_lines:
        print(f"{line.node_name}: {line.content}")
    print_workflow(result.workflow, args.output)
    return final_exit_code(result.workflow)


async def _run_in_process(
    manifest: ManifestFile,
    parameters: dict[str, str],
    args: argparse.Namespace,
    data_dir: Path,
    progress: TextIO | None = None,
) -> RunResult:
    from treadle.client.client import TreadleClient
    from treadle.client.progress import wait_with_progress
    from treadle.config import ServerConfig
    from treadle.services.server import start_stack

    try:
        stack = await start_stack(ServerConfig(data_dir=data_dir, listen="127.0.0.1:0"))
    except OSError as exc:
        raise CommandError(f"cannot start the embedded server: {exc}", EXIT_SERVER_ERROR) from None
    try:
        async with TreadleClient(stack.address) as client:
            try:
                submitted = await client.submit(manifest.text, parameters=parameters, entrypoint=args.entrypoint)
            except InvalidSpec as exc:
                raise server_invalid(manifest, exc) from None
            final = await wait_with_progress(client, submitted.metadata.name, progress)
            log_lines = [line async for line in client.logs(final.metadata.name)] if args.logs else []
    finally:
        await stack.stop(STOP_GRACE)
    return RunResult(final, log_lines)


@contextlib.contextmanager
def _data_dir(chosen: str | None) -> Iterator[Path]:
    if chosen:
        path = Path(chosen)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"{chosen}: cannot create data directory: {exc.strerror or exc}") from None
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="treadle-run-", ignore_cleanup_errors=True) as tmp:
        yield Path(tmp)


@contextlib.contextmanager
def _service_output_to(log_file: Path | None) -> Iterator[None]:
    """Route what the in-process services and their children write on fds 1 and 2.

    `treadle run -o json` promises that stdout holds the JSON and nothing else,
    and errors are one line on stderr; so while the stack runs, both go to
    log_file, or with None (--verbose) stdout goes to stderr.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    if log_file is None:
        os.dup2(2, 1)
    else:
        target = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(target, 1)
        os.dup2(target, 2)
        os.close(target)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
