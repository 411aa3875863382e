"""Large results and parameter values in the scheduler: text in memory, references in storage and on the wire.

An executor reports a value longer than 256 KiB as a blob reference
(``resultRef``, ``parameters[].valueRef``; see services/artifacts/values.py).
The engine needs the text itself: it substitutes it into templates, evaluates
expressions and loops over it. So the scheduler keeps both in a node's outputs
while it runs the workflow (``result`` beside ``resultRef``, ``value`` beside
``valueRef``), and everything that leaves its memory keeps only the reference:

- node records and the run state in SQLite (``without_inline_values``), so rows stay small;
- status messages (GetWorkflowStatus, WatchWorkflowStatus), so watch events stay small.

A large value passed on verbatim (a step's input parameter bound to
``{{steps.x.outputs.result}}``, a steps template's output parameter) is the
same text: ``KnownValues`` recognises it by its SHA-256 and gives it the same
reference, so it too is stored and sent as the reference. (A value that only
contains a large value, with text around it, is stored as it is.)

A run loaded from SQLite (after a restart, or for a retry) gets the text back
with ``fill_values`` before its engine uses it. Every text is read through the
artifact service and checked against its SHA-256 on the way.

Plain Python: the loader that reads a blob is handed in (artifacts_peer.py is the gRPC one).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

RESULT_REF = "resultRef"
VALUE_REF = "valueRef"

# Reads the text of a blob reference (a StoredArtifact in its JSON form).
ValueLoader = Callable[[dict[str, Any]], Awaitable[str]]


def has_references(outputs: dict[str, Any]) -> bool:
    return bool(outputs.get(RESULT_REF)) or any(p.get(VALUE_REF) for p in _parameters(outputs))


def missing_text(outputs: dict[str, Any]) -> bool:
    """Whether some reference in outputs has no text beside it (a record loaded from storage)."""
    if outputs.get(RESULT_REF) and outputs.get("result") is None:
        return True
    return any(p.get(VALUE_REF) and p.get("value") is None for p in _parameters(outputs))


async def fill_values(outputs: dict[str, Any], load: ValueLoader) -> int:
    """Put the text of every reference without one into outputs, in place; return how many were read."""
    read = 0
    if outputs.get(RESULT_REF) and outputs.get("result") is None:
        outputs["result"] = await load(outputs[RESULT_REF])
        read += 1
    for parameter in _parameters(outputs):
        if parameter.get(VALUE_REF) and parameter.get("value") is None:
            parameter["value"] = await load(parameter[VALUE_REF])
            read += 1
    return read


def without_inline_values(outputs: dict[str, Any]) -> dict[str, Any]:
    """outputs as stored and sent: without the text of a value that has a reference (a copy; outputs is kept)."""
    if not has_references(outputs):
        return outputs
    slim = {k: v for k, v in outputs.items() if not (k == "result" and outputs.get(RESULT_REF))}
    if "parameters" in slim:
        slim["parameters"] = [
            {k: v for k, v in p.items() if k != "value"} if p.get(VALUE_REF) else p for p in _parameters(outputs)
        ]
    return slim


async def fill_all(blocks: Iterable[dict[str, Any]], load: ValueLoader) -> int:
    """fill_values for each inputs or outputs block, reading each blob once; return how many blobs were read."""
    texts: dict[tuple[str, str], str] = {}

    async def load_once(ref: dict[str, Any]) -> str:
        where = (str(ref.get("repository") or ""), str(ref.get("key") or ""))
        if where not in texts:
            texts[where] = await load(ref)
        return texts[where]

    for block in blocks:
        if missing_text(block):
            await fill_values(block, load_once)
    return len(texts)


class KnownValues:
    """The large values of one run by content (byte length and SHA-256), with their references."""

    def __init__(self) -> None:
        self._refs: dict[tuple[int, str], dict[str, Any]] = {}
        self._smallest = 0

    def remember(self, outputs: dict[str, Any]) -> None:
        """Learn the references in an outputs block (whose blobs hold exactly the texts beside them)."""
        refs = [outputs.get(RESULT_REF)] + [p.get(VALUE_REF) for p in _parameters(outputs)]
        for ref in refs:
            if not isinstance(ref, dict):
                continue
            size, digest = int(ref.get("sizeBytes") or 0), str(ref.get("sha256") or "")
            if size and digest:
                self._refs[(size, digest)] = ref
                self._smallest = min(self._smallest or size, size)

    def add_references(self, block: dict[str, Any]) -> None:
        """Give each known large value in an inputs or outputs block its reference (in place)."""
        if not self._refs:
            return
        if isinstance(block.get("result"), str) and not block.get(RESULT_REF):
            ref = self._ref_for(block["result"])
            if ref is not None:
                block[RESULT_REF] = ref
        for parameter in _parameters(block):
            value = parameter.get("value")
            if isinstance(value, str) and not parameter.get(VALUE_REF):
                ref = self._ref_for(value)
                if ref is not None:
                    parameter[VALUE_REF] = ref

    def _ref_for(self, text: str) -> dict[str, Any] | None:
        if len(text) * 4 < self._smallest:  # surely shorter than any known value: at most 4 bytes a character
            return None
        data = text.encode()
        return self._refs.get((len(data), hashlib.sha256(data).hexdigest()))


def _parameters(outputs: dict[str, Any]) -> list[dict[str, Any]]:
    parameters = outputs.get("parameters")
    return parameters if isinstance(parameters, list) else []
