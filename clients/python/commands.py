"""The CLI verbs that talk to a running treadle server, and `lint` and `version`.

Each verb takes the parsed arguments and returns the exit code; domain errors
propagate to cli.main, which turns them into one line on stderr. grpc and the
protobuf modules are imported inside the verbs that use them, so that offline
`lint` and `version` do not pay for them.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from treadle.client.inputs import (
    EXIT_OK,
    EXIT_WORKFLOW_FAILED,
    CommandError,
    ManifestFile,
    parameters_dict,
    print_error,
    read_manifest,
    submission_manifest,
)
from treadle.errors import InvalidSpec

if TYPE_CHECKING:
    from treadle.client.client import ListFilter, TreadleClient
    from treadle.workflow.v1.workflow_pb2 import Workflow


def connect(args: argparse.Namespace) -> TreadleClient:
    from treadle.client.remote import client_for

    return client_for(args)


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def print_workflow(workflow: Workflow, output: str | None) -> None:
    """Print in the -o format: json or yaml (argo's shape), name, or the argo-get summary."""
    if output in ("json", "yaml"):
        from treadle.client.argo_json import workflow_to_argo_json
        from treadle.client.output_formats import print_document

        print_document(workflow_to_argo_json(workflow), output)
    elif output == "name":
        print(workflow.metadata.name)
    else:
        from treadle.client.render import workflow_summary

        print(workflow_summary(workflow))


def final_exit_code(workflow: Workflow) -> int:
    """0 when the workflow Succeeded; otherwise one line on stderr saying why, and 1."""
    from treadle.client.argo_json import workflow_phase_name
    from treadle.workflow.v1 import workflow_pb2 as wf_pb

    if workflow.status.phase == wf_pb.WORKFLOW_PHASE_SUCCEEDED:
        return EXIT_OK
    phase = workflow_phase_name(workflow.status.phase) or "unfinished"
    reason = f": {workflow.status.message}" if workflow.status.message else ""
    print_error(f"workflow {workflow.metadata.name} {phase}{reason}")
    return EXIT_WORKFLOW_FAILED


def server_invalid(manifest: ManifestFile, exc: InvalidSpec) -> CommandError:
    """The server names the manifest text "manifest"; the user knows it by its file name."""
    from treadle.errors import FieldViolation

    fields = [FieldViolation("" if v.field == "manifest" else v.field, v.description) for v in exc.violations]
    return manifest.invalid(InvalidSpec(fields))


async def submit(args: argparse.Namespace) -> int:
    manifest = submission_manifest(args.file, getattr(args, "source", None))
    async with connect(args) as client:
        try:
            workflow = await client.submit(
                manifest.text,
                parameters=parameters_dict(args.parameters),
                entrypoint=args.entrypoint,
                generate_name=args.generate_name,
                labels=parameters_dict(args.labels),
            )
        except InvalidSpec as exc:
            raise server_invalid(manifest, exc) from None
        if not args.watch and not getattr(args, "wait", False):
            print_workflow(workflow, args.output)
            return EXIT_OK
        from treadle.client.progress import wait_with_progress

        # Progress only with --watch and the default output: -o name|json|yaml promise stdout holds just that.
        stream = sys.stdout if args.watch and args.output is None else None
        final = await wait_with_progress(client, workflow.metadata.name, stream)
    print_workflow(final, args.output)
    return final_exit_code(final)


async def get(args: argparse.Namespace) -> int:
    async with connect(args) as client:
        workflow = await client.get(args.name)
    if getattr(args, "trace", False) and args.output is None:
        from treadle.client.render import workflow_summary
        from treadle.client.waterfall import waterfall_lines

        print(workflow_summary(workflow, tree=False))
        print()
        print("\n".join(waterfall_lines(workflow)))
        return EXIT_OK
    print_workflow(workflow, args.output)
    return EXIT_OK


async def wait(args: argparse.Namespace) -> int:
    async with connect(args) as client:
        try:
            final = await client.wait(args.name, timeout=args.timeout)
        except TimeoutError:
            raise CommandError(
                f"workflow {args.name} did not finish within {args.timeout:g}s", EXIT_WORKFLOW_FAILED
            ) from None
    if args.output:
        print_workflow(final, args.output)
    return final_exit_code(final)


def list_filter(args: argparse.Namespace) -> ListFilter:
    from treadle.client.argo_json import FINAL_WORKFLOW_PHASES, WORKFLOW_PHASES, workflow_phase_from_name
    from treadle.client.client import ListFilter

    phases = []
    for word in (w for option in args.status for w in option.split(",") if w.strip()):
        phase = workflow_phase_from_name(word)
        if phase is None:
            raise CommandError(f"unknown status {word!r}; expected {', '.join(WORKFLOW_PHASES.values())}")
        phases.append(phase)
    # --running and --completed (argo's completed=false/true label) narrow --status, or stand for it.
    for flag, wanted in (
        ("running", [p for p in WORKFLOW_PHASES if p not in FINAL_WORKFLOW_PHASES]),
        ("completed", [p for p in WORKFLOW_PHASES if p in FINAL_WORKFLOW_PHASES]),
    ):
        if getattr(args, flag, False):
            narrowed = [p for p in phases if p in wanted] if phases else wanted
            if not narrowed:
                raise CommandError(f"--status {','.join(args.status)} and --{flag} select nothing together")
            phases = narrowed
    return ListFilter(label_selector=args.selector, phases=tuple(phases), name_prefix=args.prefix)


async def list_workflows(args: argparse.Namespace) -> int:
    filters = list_filter(args)
    async with connect(args) as client:
        workflows = [wf async for wf in client.list(filters=filters)]
    if args.output in ("json", "yaml"):
        from treadle.client.argo_json import workflow_to_argo_json
        from treadle.client.output_formats import print_document

        print_document([workflow_to_argo_json(wf) for wf in workflows], args.output)
    elif args.output == "name":
        for wf in workflows:
            print(wf.metadata.name)
    elif args.output == "wide" and workflows:
        from treadle.client.tables import wide_workflow_table

        print("\n".join(wide_workflow_table(workflows)))
    elif workflows:
        from treadle.client.render import workflow_table

        print("\n".join(workflow_table(workflows)))
    else:
        print("No workflows found")
    return EXIT_OK


async def logs(args: argparse.Namespace) -> int:
    async with connect(args) as client:
        async for line in client.logs(args.name, node=args.node, follow=getattr(args, "follow", False)):
            print(f"{line.node_name}: {line.content}")
    return EXIT_OK


async def lint(args: argparse.Namespace) -> int:
    """Check every file; report each bad one as one line. Offline unless --server is given."""
    parameters = parameters_dict(args.parameters)
    problems: list[CommandError] = []
    client = connect(args) if args.server_given else None
    try:
        for path in args.files:
            try:
                manifest = read_manifest(path)
                if client is None:
                    manifest.validate(parameters=parameters)
                else:
                    try:
                        await client.lint(manifest.text, parameters=parameters)
                    except InvalidSpec as exc:
                        raise server_invalid(manifest, exc) from None
            except CommandError as exc:
                problems.append(exc)
                print_error(str(exc))
            else:
                print(f"{manifest.path}: ok")
    finally:
        if client is not None:
            await client.close()
    return max((p.exit_code for p in problems), default=EXIT_OK)


def version(args: argparse.Namespace) -> int:
    from treadle import __version__

    print(f"treadle {__version__}")
    return EXIT_OK
