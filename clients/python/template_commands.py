"""`treadle template create|get|list|update|delete|lint`: WorkflowTemplates, as `argo template` manages them."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from treadle.client.commands import server_invalid
from treadle.client.inputs import EXIT_OK, CommandError, ManifestFile, read_manifest
from treadle.client.lifecycle import for_each
from treadle.client.remote import client_for
from treadle.errors import InvalidSpec

if TYPE_CHECKING:
    from treadle.client.client import TreadleClient
    from treadle.templates.v1.templates_pb2 import WorkflowTemplate

_LABEL_WIDTH = 21


def print_template(template: WorkflowTemplate, output: str | None) -> None:
    """Print in the -o format: name, json or yaml (the manifest), or a short summary."""
    if output == "name":
        print(template.metadata.name)
    elif output in ("json", "yaml"):
        from treadle.client.argo_json import template_to_argo_json
        from treadle.client.output_formats import print_document

        print_document(template_to_argo_json(template), output)
    else:
        print("\n".join(template_summary(template)))


def template_summary(template: WorkflowTemplate, *, now: datetime | None = None) -> list[str]:
    """Name, namespace, age, entrypoint and templates, labelled like `argo template get`."""
    from treadle.client.render import short_duration

    meta, spec = template.metadata, template.spec

    def line(label: str, value: str) -> str:
        return f"{label + ':':<{_LABEL_WIDTH}}{value}"

    lines = [line("Name", meta.name), line("Namespace", meta.namespace or "default")]
    if meta.HasField("creation_timestamp"):
        created = meta.creation_timestamp.ToDatetime(tzinfo=UTC)
        ago = short_duration(((now or datetime.now(UTC)) - created).total_seconds())
        lines.append(line("Created", f"{created.strftime('%a %b %d %H:%M:%S %z')} ({ago} ago)"))
    if spec.entrypoint:
        lines.append(line("Entrypoint", spec.entrypoint))
    lines.append(line("Templates", ", ".join(t.name for t in spec.templates)))
    for parameter in spec.arguments.parameters:
        lines.append(line(f"  {parameter.name}", parameter.value))
    return lines


async def _store_each(
    args: argparse.Namespace, store: Callable[[TreadleClient, str], Awaitable[WorkflowTemplate]]
) -> int:
    """store(client, manifest text) for every file, printing each stored template."""
    async with client_for(args) as client:

        async def act(path: str) -> int:
            manifest = read_manifest(path)
            try:
                template = await store(client, manifest.text)
            except InvalidSpec as exc:
                raise server_invalid(manifest, exc) from None
            print_template(template, args.output)
            return EXIT_OK

        return await for_each(args.files, args.server, act)


async def create(args: argparse.Namespace) -> int:
    return await _store_each(args, lambda client, text: client.create_template(text))


async def update(args: argparse.Namespace) -> int:
    return await _store_each(args, lambda client, text: client.update_template(text))


async def get(args: argparse.Namespace) -> int:
    async with client_for(args) as client:

        async def act(name: str) -> int:
            print_template(await client.get_template(name), args.output)
            return EXIT_OK

        return await for_each(args.names, args.server, act)


async def list_templates(args: argparse.Namespace) -> int:
    async with client_for(args) as client:
        templates = [template async for template in client.list_templates()]
    if args.output == "name":
        for template in templates:
            print(template.metadata.name)
    elif args.output in ("json", "yaml"):
        from treadle.client.argo_json import template_to_argo_json
        from treadle.client.output_formats import print_document

        print_document([template_to_argo_json(t) for t in templates], args.output)
    elif templates:
        from treadle.client.tables import template_table

        print("\n".join(template_table(templates, wide=args.output == "wide")))
    else:
        print("No workflow templates found")
    return EXIT_OK


async def delete(args: argparse.Namespace) -> int:
    if bool(args.names) == bool(args.all):
        raise CommandError("name the templates to delete, or pass --all (not both)")
    async with client_for(args) as client:
        names = args.names or [template.metadata.name async for template in client.list_templates()]

        async def act(name: str) -> int:
            await client.delete_template(name)
            print(f"WorkflowTemplate '{name}' deleted")
            return EXIT_OK

        return await for_each(names, args.server, act)


async def lint(args: argparse.Namespace) -> int:
    """Check every file, each bad one reported as one line. Offline unless --server is given."""
    if args.server_given:
        async with client_for(args) as client:

            async def remote_check(path: str) -> int:
                manifest = read_manifest(path)
                try:
                    await client.lint_template(manifest.text)
                except InvalidSpec as exc:
                    raise server_invalid(manifest, exc) from None
                print(f"{manifest.path}: ok")
                return EXIT_OK

            return await for_each(args.files, args.server, remote_check)

    async def offline_check(path: str) -> int:
        manifest = read_manifest(path)
        validate_template(manifest)
        print(f"{manifest.path}: ok")
        return EXIT_OK

    return await for_each(args.files, args.server, offline_check)


def validate_template(manifest: ManifestFile) -> None:
    """Everything that can be known offline about a WorkflowTemplate manifest; CommandError naming the file."""
    from treadle.spec.manifest import TEMPLATE_KINDS, load_manifest
    from treadle.spec.validate import validate_workflow_template

    try:
        validate_workflow_template(load_manifest(manifest.text, source="", kinds=TEMPLATE_KINDS))
    except InvalidSpec as exc:
        raise manifest.invalid(exc) from None
