"""Tables for `list -o wide`, `template list` and `semaphore list`, laid out like argo's."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from treadle.client.lock_calls import Lock
from treadle.client.render import short_duration, workflow_table
from treadle.templates.v1.templates_pb2 import WorkflowTemplate
from treadle.workflow.v1.workflow_pb2 import Workflow


def columns(table: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart; the last column is not padded."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table]


def wide_workflow_table(workflows: Sequence[Workflow], *, now: datetime | None = None) -> list[str]:
    """`argo list -o wide`: the list table with the workflows' parameters and labels added on the right."""
    narrow = workflow_table(workflows, now=now)
    width = max(len(line) for line in narrow)
    extra = [("PARAMETERS", "LABELS")]
    for wf in workflows:
        parameters = ",".join(f"{p.name}={p.value}" for p in wf.spec.arguments.parameters)
        labels = ",".join(f"{k}={v}" for k, v in sorted(wf.metadata.labels.items()))
        extra.append((parameters, labels))
    right = columns(extra)
    return [f"{line.ljust(width)}  {more}".rstrip() for line, more in zip(narrow, right, strict=True)]


def template_table(
    templates: Iterable[WorkflowTemplate], *, wide: bool = False, now: datetime | None = None
) -> list[str]:
    """NAME / AGE rows (and ENTRYPOINT / TEMPLATES / LABELS when wide)."""
    now = now or datetime.now(UTC)
    table: list[tuple[str, ...]] = [("NAME", "AGE", "ENTRYPOINT", "TEMPLATES", "LABELS") if wide else ("NAME", "AGE")]
    for template in templates:
        meta = template.metadata
        created = meta.creation_timestamp.ToDatetime(tzinfo=UTC) if meta.HasField("creation_timestamp") else None
        age = short_duration((now - created).total_seconds()) if created is not None else ""
        row: tuple[str, ...] = (meta.name, age)
        if wide:
            names = ",".join(t.name for t in template.spec.templates)
            labels = ",".join(f"{k}={v}" for k, v in sorted(meta.labels.items()))
            row += (template.spec.entrypoint, names, labels)
        table.append(row)
    return columns(table)


def lock_table(locks: Iterable[Lock]) -> list[str]:
    """NAME / KIND / LIMIT / HELD / HOLDERS rows; NAME is what `semaphore set` and `delete` take."""
    table = [("NAME", "KIND", "LIMIT", "HELD", "HOLDERS")]
    for lock in locks:
        name = lock.name.partition("/")[2]
        table.append((name, lock.kind, str(lock.limit), str(len(lock.holders)), ",".join(lock.holders)))
    return columns(table)
