"""Resolving a workflow's templateRef and workflowTemplateRef at submission.

The referenced WorkflowTemplates are fetched from WorkflowTemplateService,
then treadle.spec.references copies what the workflow uses into its own spec.
"""

from __future__ import annotations

from typing import Any, Protocol

from treadle.errors import NotFound
from treadle.spec.references import referenced_names, resolve_references

# A WorkflowTemplate may refer to others; this bounds how far the references chain.
MAX_TEMPLATE_FETCHES = 100


class TemplateReader(Protocol):
    async def get_spec(self, name: str) -> dict[str, Any]:
        """The spec of one WorkflowTemplate; raises NotFound."""


async def resolve_templates(doc: dict[str, Any], reader: TemplateReader) -> dict[str, Any]:
    """doc with every WorkflowTemplate reference resolved; unchanged when it has none."""
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return doc
    wanted = referenced_names(spec)
    if not wanted:
        return doc
    fetched: dict[str, dict[str, Any] | None] = {}
    while wanted - fetched.keys():
        if len(fetched) >= MAX_TEMPLATE_FETCHES:
            break
        name = sorted(wanted - fetched.keys())[0]
        try:
            fetched[name] = await reader.get_spec(name)
        except NotFound:
            fetched[name] = None
        found = fetched[name]
        if found is not None:
            wanted |= referenced_names(found)
    return {**doc, "spec": resolve_references(spec, fetched.get)}
