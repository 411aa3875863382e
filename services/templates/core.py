"""The WorkflowTemplate core: validation, idempotency and optimistic concurrency. No grpc here."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from treadle.errors import AlreadyExists, FailedPrecondition, FieldViolation, InvalidSpec, NotFound
from treadle.services.templates.repository import StoredTemplate, TemplateRepository, now
from treadle.spec.manifest import TEMPLATE_KINDS, check_kind, load_manifest
from treadle.spec.validate import validate_workflow_template

MAX_PAGE = 500


def parse_template(doc: dict[str, Any] | None, manifest: str) -> dict[str, Any]:
    """The validated Argo-shaped WorkflowTemplate dict from a typed dict or manifest text."""
    if doc is None:
        doc = load_manifest(manifest, source="manifest", kinds=TEMPLATE_KINDS)
    else:
        doc = {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate", **doc}
        check_kind(doc, TEMPLATE_KINDS)
    return validate_workflow_template(doc)


class Templates:
    def __init__(self, repo: TemplateRepository) -> None:
        self.repo = repo

    def create(self, doc: dict[str, Any], request_id: str) -> StoredTemplate:
        earlier = self.repo.by_request(request_id)
        if earlier is not None:
            return earlier
        meta = doc.get("metadata") or {}
        stored = StoredTemplate(
            name=meta["name"],
            uid=str(uuid.uuid4()),
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
            spec=doc["spec"],
            created_at=now(),
            resource_version=1,
        )
        if not self.repo.insert(stored, request_id):
            raise AlreadyExists("WorkflowTemplate", stored.name)
        return stored

    def get(self, name: str) -> StoredTemplate:
        found = self.repo.get(name)
        if found is None:
            raise NotFound("WorkflowTemplate", name)
        return found

    def list(self, page_size: int, page_token: str) -> tuple[list[StoredTemplate], str]:
        size = min(page_size or 100, MAX_PAGE)
        try:
            after = base64.urlsafe_b64decode(page_token.encode()).decode() if page_token else ""
        except (ValueError, UnicodeDecodeError):
            raise InvalidSpec(FieldViolation("page_token", "page_token is not one this server issued")) from None
        page = self.repo.page(after, size + 1)
        more = len(page) > size
        page = page[:size]
        token = base64.urlsafe_b64encode(page[-1].name.encode()).decode() if more and page else ""
        return page, token

    def update(self, doc: dict[str, Any], resource_version: str) -> StoredTemplate:
        meta = doc.get("metadata") or {}
        current = self.get(meta["name"])
        expected = None
        if resource_version:
            if not resource_version.isdigit():
                raise InvalidSpec(FieldViolation("resource_version", "resource_version is not one this server issued"))
            expected = int(resource_version)
        updated = StoredTemplate(
            name=current.name,
            uid=current.uid,
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
            spec=doc["spec"],
            created_at=current.created_at,
            resource_version=current.resource_version,
        )
        stored = self.repo.replace(updated, expected)
        if stored is None:
            raise FailedPrecondition(
                f"WorkflowTemplate {current.name!r} changed: resource_version {resource_version} is not current",
                subject=f"workflowtemplates/{current.name}",
                type="RESOURCE_VERSION",
            )
        return stored

    def delete(self, name: str, request_id: str) -> None:
        if self.repo.delete(name, request_id):
            return
        if request_id and self.repo.deleted_by(request_id, name):
            return
        raise NotFound("WorkflowTemplate", name)

    def specs(self, names: set[str]) -> dict[str, dict[str, Any]]:
        """Specs of the named templates that exist, for resolving references."""
        found = {}
        for name in names:
            stored = self.repo.get(name)
            if stored is not None:
                found[name] = stored.spec
        return found
