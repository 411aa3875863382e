"""The `treadle` command line.

    treadle run FILE [-p NAME=VALUE ...] [-o json]      run in-process, no server needed
    treadle submit FILE [--watch|--wait] [-o name|json|yaml]   submit to a server
    treadle get NAME | list | logs NAME | wait NAME | watch NAME | delete NAME...|--completed|--all
    treadle suspend|resume|stop|terminate|retry|resubmit NAME...   node set NAME --node N ...
    treadle template create|get|list|update|delete|lint   semaphore set|delete|list   (cli_verbs.py)
    treadle lint FILE...                                 offline unless --server is given
    treadle completion bash|zsh
    treadle serve [all|admission|scheduler|artifacts|outputs] [--listen HOST:PORT] [--data-dir DIR]
    treadle version

The server is --server HOST:PORT, else $TREADLE_SERVER, else 127.0.0.1:7733.
TLS and a bearer token: --secure, --ca-cert, --client-cert/--client-key,
--insecure-skip-verify, --token (remote.py lists their environment variables).

Errors are one line on stderr, `treadle: <message>`. Exit codes: 0 success,
1 the workflow Failed or hit an Error, 2 bad input or usage, 3 server
unreachable, 4 no such workflow, 5 any other server error, 130 interrupted.

Startup stays fast: grpc, protobuf and the services load inside the verbs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NoReturn

from treadle import errors
from treadle.client.cli_verbs import CONNECTION_VALUE_FLAGS, add_connection_flags, add_control_verbs
from treadle.client.inputs import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_SERVER_ERROR,
    EXIT_UNAVAILABLE,
    CommandError,
    ParameterFileAction,
    labels_argument,
    parameter_argument,
    parameter_file_argument,
    print_error,
)

SERVER_ENV = "TREADLE_SERVER"
DEBUG_ENV = "TREADLE_DEBUG"  # set to see tracebacks of unexpected errors
OUTPUT_FORMATS = ("name", "json", "yaml")

Handler = Callable[[argparse.Namespace], int]


class OneLineParser(argparse.ArgumentParser):
    """argparse, with usage errors reported as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print_error(f"{message} (see '{self.prog} --help')")
        raise SystemExit(EXIT_BAD_INPUT)


def default_server() -> str:
    from treadle.config import DEFAULT_PORT

    return os.environ.get(SERVER_ENV) or f"127.0.0.1:{DEFAULT_PORT}"


def _async(verb: Callable[[argparse.Namespace], Coroutine[Any, Any, int]]) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        import asyncio

        return asyncio.run(verb(args))

    return handler


def _lazy(module: str, name: str, *, is_async: bool = True) -> Handler:
    """A handler that imports its module only when its verb runs."""

    def handler(args: argparse.Namespace) -> int:
        import importlib

        verb = getattr(importlib.import_module(module), name)
        return _async(verb)(args) if is_async else int(verb(args))

    return handler


def build_parser(argv: Sequence[str] = ()) -> OneLineParser:
    parser = OneLineParser(
        prog="treadle",
        description="Run Argo Workflows manifests on treadle.",
        epilog="exit codes: 0 success, 1 the workflow Failed or hit an Error, 2 bad input or usage, "
        "3 server unreachable, 4 no such workflow, 5 other server errors",
    )
    parser.add_argument("--server", metavar="HOST:PORT", help=f"treadle server (default: ${SERVER_ENV} or local)")
    # Repeated on each remote verb so that it may also follow the verb; SUPPRESS keeps the top-level value.
    remote = OneLineParser(add_help=False)
    remote.add_argument("--server", metavar="HOST:PORT", default=argparse.SUPPRESS, help="treadle server")
    add_connection_flags(parser, repeated=False)
    add_connection_flags(remote, repeated=True)
    params = OneLineParser(add_help=False)
    params.add_argument(
        "-p",
        "--parameter",
        dest="parameters",
        metavar="NAME=VALUE",
        action="append",
        type=parameter_argument,
        help="override a workflow argument (repeatable)",
    )
    params.add_argument(
        "-f",
        "--parameter-file",
        dest="parameters",
        metavar="FILE",
        action=ParameterFileAction,
        type=parameter_file_argument,
        help="workflow arguments from a YAML or JSON map; -p overrides them",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    commands = "treadle.client.commands"

    run = verbs.add_parser("run", parents=[params], help="run a workflow in-process and print its outcome")
    run.add_argument("file", metavar="FILE", help="manifest (YAML or JSON); - reads stdin")
    run.add_argument("--entrypoint", default="", help="template to start with instead of spec.entrypoint")
    run.add_argument("-o", "--output", choices=("json",), help="print argo's JSON (and nothing else) on stdout")
    run.add_argument("--data-dir", help="keep state here instead of a temporary directory")
    run.add_argument("--logs", action="store_true", help="print the steps' logs before the outcome")
    run.add_argument("-v", "--verbose", action="store_true", help="log what the services do on stderr")
    run.set_defaults(handler=_lazy("treadle.client.embedded", "run", is_async=False))

    submit = verbs.add_parser("submit", parents=[remote, params], help="submit a workflow to a server")
    submit.add_argument("file", metavar="FILE", nargs="?", help="manifest (YAML or JSON); - reads stdin")
    submit.add_argument("--from", dest="source", metavar="workflowtemplate/NAME", help="run a stored WorkflowTemplate")
    submit.add_argument("--entrypoint", default="", help="template to start with instead of spec.entrypoint")
    submit.add_argument("--generate-name", default="", help="name prefix instead of metadata.generateName")
    submit.add_argument(
        "-l",
        "--labels",
        "--label",
        dest="labels",
        metavar="NAME=VALUE,...",
        action="extend",
        type=labels_argument,
        help="labels to add, comma-separated (repeatable)",
    )
    submit.add_argument(
        "-w", "--watch", action="store_true", help="show live progress and wait for the workflow to finish"
    )
    submit.add_argument("--wait", action="store_true", help="wait for the workflow to finish, quietly")
    submit.add_argument("-o", "--output", choices=OUTPUT_FORMATS)
    submit.set_defaults(handler=_lazy(commands, "submit"))

    get = verbs.add_parser("get", parents=[remote], help="show a workflow and its node tree")
    get.add_argument("name", metavar="NAME")
    get.add_argument("-o", "--output", choices=OUTPUT_FORMATS)
    get.add_argument("--trace", action="store_true", help="show where the time went: a waterfall of the nodes")
    get.set_defaults(handler=_lazy(commands, "get"))

    listing = verbs.add_parser("list", parents=[remote], help="list workflows, newest first")
    listing.add_argument("-l", "--selector", default="", help="label selector, for example 'team=a,env in (dev,test)'")
    listing.add_argument(
        "--status", action="append", default=[], help="only these phases, comma-separated (Running,Failed,...)"
    )
    listing.add_argument("--prefix", default="", help="only names that start with this")
    only = listing.add_mutually_exclusive_group()
    only.add_argument("--running", action="store_true", help="only workflows not yet completed (Pending, Running)")
    only.add_argument("--completed", action="store_true", help="only Succeeded, Failed or Error workflows")
    listing.add_argument("-o", "--output", choices=(*OUTPUT_FORMATS, "wide"))
    listing.set_defaults(handler=_lazy(commands, "list_workflows"))

    logs = verbs.add_parser("logs", parents=[remote], help="print the steps' logs")
    logs.add_argument("name", metavar="NAME")
    logs.add_argument("--node", default="", help="only this node (id, name or display name)")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="stream running steps' lines as they come, until the workflow ends"
    )
    logs.set_defaults(handler=_lazy(commands, "logs"))

    wait = verbs.add_parser("wait", parents=[remote], help="wait for a workflow to finish")
    wait.add_argument("name", metavar="NAME")
    wait.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    wait.add_argument("-o", "--output", choices=OUTPUT_FORMATS)
    wait.set_defaults(handler=_lazy(commands, "wait"))

    add_control_verbs(verbs, remote, params, _lazy)

    lint = verbs.add_parser("lint", parents=[remote, params], help="check manifests without running them")
    lint.add_argument("files", metavar="FILE", nargs="+")
    lint.set_defaults(handler=_lazy(commands, "lint"))

    serve = verbs.add_parser("serve", help="run treadle's services", description="Run treadle's services.")
    if _first_positional(argv) == "serve":
        # Only `treadle serve` pays for importing the services.
        from treadle.services.server import add_serve_arguments

        add_serve_arguments(serve)
    serve.set_defaults(handler=_lazy("treadle.services.server", "run_serve", is_async=False))

    version = verbs.add_parser("version", help="print the version")
    version.set_defaults(handler=_lazy(commands, "version", is_async=False))
    return parser


def _first_positional(argv: Sequence[str]) -> str:
    """The verb: the first argument that is neither an option nor the value of --server, --token, ..."""
    skip_next = False
    for arg in argv:
        if skip_next:
            skip_next = False
        elif arg in ("--server", *CONNECTION_VALUE_FLAGS):
            skip_next = True
        elif not arg.startswith("-"):
            return arg
    return ""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    args = build_parser(argv).parse_args(argv)
    args.server_given = args.server is not None
    if not args.server_given:
        args.server = default_server()
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.verb != "serve":
        # Failures are reported in one line; grpc's core would also log TLS handshake errors.
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    try:
        return int(args.handler(args))
    except CommandError as exc:
        print_error(str(exc))
        return exc.exit_code
    except errors.TreadleError as exc:
        message, code = describe(exc, args.server)
        print_error(message)
        return code
    except KeyboardInterrupt:
        print_error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (`treadle list | head`): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        print_error(f"internal error: {type(exc).__name__}: {exc} (set {DEBUG_ENV}=1 for the traceback)")
        return EXIT_SERVER_ERROR


def describe(exc: errors.TreadleError, server: str) -> tuple[str, int]:
    """The line and exit code for a domain error the server reported."""
    if isinstance(exc, errors.InvalidSpec):
        return str(exc), EXIT_BAD_INPUT
    if isinstance(exc, errors.NotFound):
        return str(exc), EXIT_NOT_FOUND
    if isinstance(exc, errors.Unavailable):
        return f"cannot reach the treadle server at {server}: {exc}", EXIT_UNAVAILABLE
    return str(exc) or type(exc).__name__, EXIT_SERVER_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
