"""The CLI's lifecycle verbs: watch, suspend, resume, stop, terminate, node set, retry, resubmit, and delete.

Verbs that take several names act on each in turn: a failure is reported as one
line on stderr and the others still go ahead; the exit code is the worst one.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from treadle.client.commands import final_exit_code, list_filter, print_workflow
from treadle.client.inputs import EXIT_OK, CommandError, parameters_dict, print_error
from treadle.client.remote import client_for
from treadle.errors import TreadleError

if TYPE_CHECKING:
    from treadle.client.client import TreadleClient
    from treadle.workflow.v1.workflow_pb2 import Workflow

# `--node-field-selector` fields treadle can select a node by (argo's selector has more).
NODE_FIELDS = ("displayName", "name", "id")


async def for_each(names: Sequence[str], server: str, act: Callable[[str], Awaitable[int]]) -> int:
    """act(name) for every name; failures become one line each on stderr, and the worst exit code."""
    from treadle.client.cli import describe

    worst = EXIT_OK
    for name in names:
        try:
            code = await act(name)
        except CommandError as exc:
            print_error(str(exc))
            code = exc.exit_code
        except TreadleError as exc:
            message, code = describe(exc, server)
            print_error(message)
        worst = max(worst, code)
    return worst


def node_selector(args: argparse.Namespace) -> str:
    """The node --node or --node-field-selector names; "" when neither is given."""
    if args.node:
        return str(args.node)
    if not args.node_field_selector:
        return ""
    field, sep, value = str(args.node_field_selector).partition("=")
    field = field.strip()
    if not sep or field.endswith("!") or field not in NODE_FIELDS or not value.strip():
        raise CommandError(
            f"unsupported --node-field-selector {args.node_field_selector!r}: "
            f"expected {'=NAME, '.join(NODE_FIELDS)}=NAME"
        )
    return value.strip()


async def watch(args: argparse.Namespace) -> int:
    from treadle.client.progress import wait_with_progress

    async with client_for(args) as client:
        final = await wait_with_progress(client, args.name, sys.stdout)
    print_workflow(final, None)
    return final_exit_code(final)


async def suspend(args: argparse.Namespace) -> int:
    async with client_for(args) as client:

        async def act(name: str) -> int:
            await client.suspend(name)
            print(f"workflow {name} suspended")
            return EXIT_OK

        return await for_each(args.names, args.server, act)


async def resume(args: argparse.Namespace) -> int:
    node = node_selector(args)
    async with client_for(args) as client:

        async def act(name: str) -> int:
            await client.resume(name, node=node)
            print(f"workflow {name} node {node} resumed" if node else f"workflow {name} resumed")
            return EXIT_OK

        return await for_each(args.names, args.server, act)


async def stop(args: argparse.Namespace) -> int:
    async with client_for(args) as client:

        async def act(name: str) -> int:
            await client.stop(name, message=args.message)
            print(f"workflow {name} stopped")
            return EXIT_OK

        return await for_each(args.names, args.server, act)


async def terminate(args: argparse.Namespace) -> int:
    async with client_for(args) as client:

        async def act(name: str) -> int:
            await client.terminate(name, message=args.message)
            print(f"workflow {name} terminated")
            return EXIT_OK

        return await for_each(args.names, args.server, act)


async def node_set(args: argparse.Namespace) -> int:
    node = node_selector(args)
    parameters = parameters_dict(args.output_parameters)
    phase = args.phase  # argparse has checked it: Succeeded, Failed, Error or ""
    if not parameters and not phase:
        raise CommandError("nothing to set: pass --output-parameter NAME=VALUE or --phase")
    async with client_for(args) as client:
        await client.set_node(args.name, node, parameters=parameters, phase=phase, message=args.message)
    print(f"workflow {args.name} node {node} set")
    return EXIT_OK


async def finish(client: TreadleClient, workflow: Workflow, args: argparse.Namespace) -> int:
    """Print the workflow; with --watch or --wait, first wait for its end and exit with its result."""
    if not (args.watch or args.wait):
        print_workflow(workflow, args.output)
        return EXIT_OK
    if args.watch:
        from treadle.client.progress import wait_with_progress

        # Progress only with the default output: -o name|json|yaml promise stdout holds just that.
        final = await wait_with_progress(client, workflow.metadata.name, sys.stdout if args.output is None else None)
    else:
        final = await client.wait(workflow.metadata.name)
    print_workflow(final, args.output)
    return final_exit_code(final)


async def retry(args: argparse.Namespace) -> int:
    async with client_for(args) as client:

        async def act(name: str) -> int:
            return await finish(client, await client.retry(name), args)

        return await for_each(args.names, args.server, act)


async def resubmit(args: argparse.Namespace) -> int:
    parameters = parameters_dict(args.parameters)
    async with client_for(args) as client:

        async def act(name: str) -> int:
            return await finish(client, await client.resubmit(name, parameters=parameters), args)

        return await for_each(args.names, args.server, act)


async def delete(args: argparse.Namespace) -> int:
    """Delete the named workflows, or every workflow the filters select (--all selects all)."""
    filtering = bool(args.all or args.completed or args.selector or args.prefix or args.status)
    if args.names and filtering:
        raise CommandError("name workflows or pass filters (--all, --completed, --selector, ...), not both")
    if not args.names and not filtering:
        raise CommandError(
            "nothing to delete: name workflows, or pass --all, --completed, --selector, --prefix or --status"
        )
    filters = list_filter(args) if filtering else None
    async with client_for(args) as client:
        names = args.names if filters is None else [wf.metadata.name async for wf in client.list(filters=filters)]

        async def act(name: str) -> int:
            if args.dry_run:
                print(f"Workflow '{name}' deleted (dry run)")
            else:
                await client.delete(name)
                print(f"Workflow '{name}' deleted")
            return EXIT_OK

        return await for_each(names, args.server, act)
