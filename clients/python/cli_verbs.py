"""The parsers of the CLI's control verbs, and the connection flags of every remote verb.

    treadle watch NAME                                      live progress until it ends
    treadle suspend|resume|stop|terminate NAME...           resume --node N, stop/terminate --message M
    treadle node set NAME --node N --output-parameter k=v [--phase Succeeded|Failed|Error] [--message M]
    treadle retry|resubmit NAME... [--watch|--wait] [-o name|json|yaml]
    treadle delete NAME... | --all | --completed | -l SELECTOR | --prefix P | --status S  [--dry-run]
    treadle template create|update|lint FILE... | get|delete NAME... | list
    treadle semaphore set NAME LIMIT | delete NAME... | list
    treadle completion bash|zsh

cli.build_parser calls add_connection_flags and add_control_verbs. The verbs
themselves live in lifecycle.py, template_commands.py, semaphore_commands.py and
completion.py, and load only when they run: this module imports nothing heavy.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from treadle.client.inputs import parameter_argument

Handler = Callable[[argparse.Namespace], int]
# cli._lazy: a handler that imports module and runs its function name when the verb runs.
Lazy = Callable[..., Handler]
SubParsers = argparse._SubParsersAction  # the object add_subparsers returns
Parser = TypeVar("Parser", bound=argparse.ArgumentParser)

WORKFLOW_OUTPUTS = ("name", "json", "yaml")
# Completion reads these metavars to offer files, workflow names, template names or semaphore names.
FILE, WORKFLOW, TEMPLATE, SEMAPHORE = "FILE", "NAME", "TEMPLATE", "SEMAPHORE"

SECURE_ENV = "TREADLE_SECURE"
INSECURE_SKIP_VERIFY_ENV = "TREADLE_INSECURE_SKIP_VERIFY"
CA_CERT_ENV = "TREADLE_CA_CERT"
TOKEN_ENV = "TREADLE_TOKEN"
SCHEDULER_ENV = "TREADLE_SCHEDULER"
# The connection flags that take a value (cli._first_positional skips the value).
CONNECTION_VALUE_FLAGS = ("--ca-cert", "--client-cert", "--client-key", "--token", "--scheduler")


def add_connection_flags(parser: argparse.ArgumentParser, *, repeated: bool) -> None:
    """TLS, token and scheduler flags. repeated: on a verb, where an absent flag keeps the top-level value."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if repeated else value

    group = parser.add_argument_group("connection")
    group.add_argument(
        "--secure", action="store_true", default=default(None), help=f"use TLS with the system's roots (${SECURE_ENV})"
    )
    group.add_argument(
        "--ca-cert",
        metavar=FILE,
        default=default(None),
        help=f"trust this CA's PEM certificate; implies TLS (${CA_CERT_ENV})",
    )
    group.add_argument(
        "--client-cert", metavar=FILE, default=default(None), help="PEM client certificate, for mutual TLS"
    )
    group.add_argument("--client-key", metavar=FILE, default=default(None), help="PEM key of --client-cert")
    group.add_argument(
        "-k",
        "--insecure-skip-verify",
        action="store_true",
        default=default(None),
        help=f"trust the server's self-signed certificate unchecked; implies TLS (${INSECURE_SKIP_VERIFY_ENV})",
    )
    group.add_argument(
        "--token",
        default=default(None),
        help=f"sent as 'authorization: Bearer TOKEN'; prefer ${TOKEN_ENV}, which ps does not show",
    )
    group.add_argument(
        "--scheduler",
        metavar="HOST:PORT",
        default=default(None),
        help=f"SchedulerService, for semaphores, when it runs apart from admission (${SCHEDULER_ENV})",
    )


def add_control_verbs(verbs: SubParsers[Parser], remote: Parser, params: Parser, lazy: Lazy) -> None:
    _add_lifecycle_verbs(verbs, remote, params, lazy)
    _add_delete(verbs, remote, lazy)
    _add_template_verbs(verbs, remote, lazy)
    _add_semaphore_verbs(verbs, remote, lazy)
    completion = verbs.add_parser("completion", help="print a bash or zsh completion script")
    completion.add_argument("shell", choices=("bash", "zsh"))
    completion.set_defaults(handler=lazy("treadle.client.completion", "print_script", is_async=False))


def _waiting_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-w", "--watch", action="store_true", help="show live progress and wait for the end")
    parser.add_argument("--wait", action="store_true", help="wait for the end quietly")
    parser.add_argument("-o", "--output", choices=WORKFLOW_OUTPUTS)


def _node_flags(parser: argparse.ArgumentParser, *, required: bool) -> None:
    which = parser.add_mutually_exclusive_group(required=required)
    which.add_argument("--node", default="", help="the suspend node: id, name or display name")
    which.add_argument(
        "--node-field-selector",
        metavar="FIELD=VALUE",
        default="",
        help="argo's form of --node: displayName=N, name=N or id=N",
    )


def _add_lifecycle_verbs(verbs: SubParsers[Parser], remote: Parser, params: Parser, lazy: Lazy) -> None:
    module = "treadle.client.lifecycle"

    watch = verbs.add_parser("watch", parents=[remote], help="show a workflow's live progress until it ends")
    watch.add_argument("name", metavar=WORKFLOW)
    watch.set_defaults(handler=lazy(module, "watch"))

    suspend = verbs.add_parser("suspend", parents=[remote], help="hold back new steps until resumed")
    suspend.add_argument("names", metavar=WORKFLOW, nargs="+")
    suspend.set_defaults(handler=lazy(module, "suspend"))

    resume = verbs.add_parser("resume", parents=[remote], help="resume suspended workflows (or one suspend node)")
    resume.add_argument("names", metavar=WORKFLOW, nargs="+")
    _node_flags(resume, required=False)
    resume.set_defaults(handler=lazy(module, "resume"))

    for verb, does in (("stop", "exit handlers still run"), ("terminate", "no exit handlers run")):
        parser = verbs.add_parser(verb, parents=[remote], help=f"fail running workflows now; {does}")
        parser.add_argument("names", metavar=WORKFLOW, nargs="+")
        parser.add_argument("--message", default="", help="recorded as the workflow's message")
        parser.set_defaults(handler=lazy(module, verb))

    node = verbs.add_parser("node", help="act on one node of a workflow")
    node_verbs = node.add_subparsers(dest="node_verb", metavar="VERB", required=True)
    node_set = node_verbs.add_parser(
        "set", parents=[remote], help="supply a suspend node's output parameters, and optionally finish it"
    )
    node_set.add_argument("name", metavar=WORKFLOW)
    _node_flags(node_set, required=True)
    node_set.add_argument(
        "--output-parameter",
        dest="output_parameters",
        metavar="NAME=VALUE",
        action="append",
        type=parameter_argument,
        help="a valueFrom.supplied output parameter (repeatable)",
    )
    node_set.add_argument(
        "--phase",
        default="",
        type=_capitalized,
        choices=("Succeeded", "Failed", "Error"),
        help="Succeeded resumes the node; Failed or Error fails it",
    )
    node_set.add_argument("--message", default="", help="recorded as the node's message when it fails")
    node_set.set_defaults(handler=lazy(module, "node_set"))

    retry = verbs.add_parser("retry", parents=[remote], help="re-run failed workflows; succeeded nodes keep outputs")
    retry.add_argument("names", metavar=WORKFLOW, nargs="+")
    _waiting_flags(retry)
    retry.set_defaults(handler=lazy(module, "retry"))

    resubmit = verbs.add_parser(
        "resubmit", parents=[remote, params], help="submit new workflows with the specs of existing ones"
    )
    resubmit.add_argument("names", metavar=WORKFLOW, nargs="+")
    _waiting_flags(resubmit)
    resubmit.set_defaults(handler=lazy(module, "resubmit"))


def _add_delete(verbs: SubParsers[Parser], remote: Parser, lazy: Lazy) -> None:
    delete = verbs.add_parser("delete", parents=[remote], help="stop and delete workflows, by name or by filter")
    delete.add_argument("names", metavar=WORKFLOW, nargs="*")
    delete.add_argument("--all", action="store_true", help="every workflow")
    delete.add_argument("--completed", action="store_true", help="every Succeeded, Failed or Error workflow")
    delete.add_argument("-l", "--selector", default="", help="workflows whose labels match this selector")
    delete.add_argument("--prefix", default="", help="workflows whose names start with this")
    delete.add_argument("--status", action="append", default=[], help="workflows in these phases, comma-separated")
    delete.add_argument("--dry-run", action="store_true", help="print what would be deleted, delete nothing")
    delete.set_defaults(handler=lazy("treadle.client.lifecycle", "delete"))


def _add_template_verbs(verbs: SubParsers[Parser], remote: Parser, lazy: Lazy) -> None:
    module = "treadle.client.template_commands"
    template = verbs.add_parser("template", help="manage WorkflowTemplates")
    template_verbs = template.add_subparsers(dest="template_verb", metavar="VERB", required=True)

    create = template_verbs.add_parser("create", parents=[remote], help="store new WorkflowTemplates")
    create.add_argument("files", metavar=FILE, nargs="+", help="manifests (YAML or JSON); - reads stdin")
    create.add_argument("-o", "--output", choices=WORKFLOW_OUTPUTS)
    create.set_defaults(handler=lazy(module, "create"))

    get = template_verbs.add_parser("get", parents=[remote], help="show WorkflowTemplates")
    get.add_argument("names", metavar=TEMPLATE, nargs="+")
    get.add_argument("-o", "--output", choices=WORKFLOW_OUTPUTS)
    get.set_defaults(handler=lazy(module, "get"))

    listing = template_verbs.add_parser("list", parents=[remote], help="list WorkflowTemplates by name")
    listing.add_argument("-o", "--output", choices=(*WORKFLOW_OUTPUTS, "wide"))
    listing.set_defaults(handler=lazy(module, "list_templates"))

    update = template_verbs.add_parser("update", parents=[remote], help="replace WorkflowTemplates' specs")
    update.add_argument("files", metavar=FILE, nargs="+", help="manifests; metadata.name picks the template")
    update.add_argument("-o", "--output", choices=WORKFLOW_OUTPUTS)
    update.set_defaults(handler=lazy(module, "update"))

    delete = template_verbs.add_parser("delete", parents=[remote], help="delete WorkflowTemplates")
    delete.add_argument("names", metavar=TEMPLATE, nargs="*")
    delete.add_argument("--all", action="store_true", help="every WorkflowTemplate")
    delete.set_defaults(handler=lazy(module, "delete"))

    lint = template_verbs.add_parser(
        "lint", parents=[remote], help="check WorkflowTemplate manifests; offline unless --server is given"
    )
    lint.add_argument("files", metavar=FILE, nargs="+")
    lint.set_defaults(handler=lazy(module, "lint"))


def _add_semaphore_verbs(verbs: SubParsers[Parser], remote: Parser, lazy: Lazy) -> None:
    module = "treadle.client.semaphore_commands"
    semaphore = verbs.add_parser("semaphore", help="manage the semaphores that synchronization names")
    semaphore_verbs = semaphore.add_subparsers(dest="semaphore_verb", metavar="VERB", required=True)

    set_ = semaphore_verbs.add_parser("set", parents=[remote], help="create or resize a semaphore")
    set_.add_argument("name", metavar=SEMAPHORE, help="<configmap>/<key>, as a template's configMapKeyRef names it")
    set_.add_argument("limit", metavar="LIMIT", type=_limit, help="how many may hold it at once")
    set_.set_defaults(handler=lazy(module, "set_semaphore"))

    delete = semaphore_verbs.add_parser("delete", parents=[remote], help="delete semaphores")
    delete.add_argument("names", metavar=SEMAPHORE, nargs="+")
    delete.set_defaults(handler=lazy(module, "delete_semaphores"))

    listing = semaphore_verbs.add_parser("list", parents=[remote], help="list semaphores and held mutexes")
    listing.add_argument("-o", "--output", choices=("name", "json"))
    listing.set_defaults(handler=lazy(module, "list_locks"))


def _capitalized(text: str) -> str:
    """Phases in any case: "succeeded" and "SUCCEEDED" are "Succeeded"."""
    return text.strip().capitalize()


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid limit {text!r}: expected a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid limit {value}: expected 0 or more (0 holds every step back)")
    return value
