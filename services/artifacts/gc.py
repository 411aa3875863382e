"""Artifact GC: delete one workflow's objects, and never another's.

An object belongs to the workflow recorded as its owner when it was written
(every upload and import records one). An object without a recorded owner
belongs to the workflow whose key prefix it is under. Each candidate is
stat'ed right before it is deleted, so an object that another workflow has
overwritten since (a shared explicit key such as ``results/latest.tgz``) is
kept.

A call does as much as its time allows and says whether it finished; calling
again continues (deleted objects are gone from listings, kept ones are
re-checked), so callers can retry it safely.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from treadle.errors import FailedPrecondition, NotFound

from .keys import validate_key
from .repository import ArtifactRepository
from .stores.base import ObjectInfo

log = logging.getLogger(__name__)

MAX_KEPT_REPORTED = 100


@dataclass
class GcResult:
    deleted: int = 0
    kept_keys: list[str] = field(default_factory=list)
    complete: bool = True

    def keep(self, key: str) -> None:
        if len(self.kept_keys) < MAX_KEPT_REPORTED:
            self.kept_keys.append(key)


async def delete_workflow_objects(
    repository: ArtifactRepository,
    workflow: str,
    keys: Iterable[str],
    *,
    all_under_prefix: bool,
    deadline: float,
    keep_keys: Iterable[str] = (),
) -> GcResult:
    """Delete keys and (with all_under_prefix) everything under the workflow's prefix that it owns.

    deadline is a time.monotonic() value; the call stops early (complete=False) when it passes.
    """
    prefix = repository.key_format.workflow_prefix(workflow)
    keep = set(keep_keys)
    result = GcResult()
    for key in dict.fromkeys(keys):  # in order, once each
        if time.monotonic() >= deadline:
            result.complete = False
            return result
        await _delete_if_owned(repository, workflow, prefix, validate_key(key), result)
    if all_under_prefix:
        token = ""
        while True:
            page = await repository.list(prefix, page_token=token)
            for info in page.objects:
                if time.monotonic() >= deadline:
                    result.complete = False
                    return result
                if info.key in keep:
                    continue
                await _delete_if_owned(repository, workflow, prefix, info.key, result)
            token = page.next_page_token
            if not token:
                break
    log.info("artifact GC of workflow %s in %s: %d deleted", workflow, repository.label, result.deleted)
    return result


def owned_by(info: ObjectInfo, workflow: str, prefix: str) -> bool:
    return info.owner == workflow or (not info.owner and info.key.startswith(prefix))


async def _delete_if_owned(
    repository: ArtifactRepository, workflow: str, prefix: str, key: str, result: GcResult
) -> None:
    try:
        info = await repository.stat(key)
    except NotFound:
        return  # deleted already: GC is idempotent
    except FailedPrecondition:
        result.keep(key)  # an object treadle did not write (no recorded digest or owner)
        return
    if not owned_by(info, workflow, prefix):
        result.keep(key)
        return
    await repository.delete(key)
    result.deleted += 1
