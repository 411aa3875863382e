"""Artifact GC: plans from a workflow's spec and status, and DeleteWorkflowArtifacts on local and S3 repositories."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest
from artifacts_harness import TIMEOUT, TOKENS, Served, header, serving, step_metadata
from artifacts_s3 import S3Server

from treadle.artifacts.v1 import artifacts_pb2 as pb
from treadle.errors import InvalidSpec, PermissionDenied
from treadle.services.artifacts.catalog import load_catalog
from treadle.services.artifacts.client import upload_file
from treadle.services.artifacts.gc import delete_workflow_objects
from treadle.services.artifacts.gc_client import run_artifact_gc
from treadle.services.artifacts.gc_plan import GcPlan, RepositoryPlan, check_strategies, plan_artifact_gc
from treadle.spec.convert import workflow_from_dict
from treadle.workflow.v1 import workflow_pb2


@pytest.fixture(params=["local", "s3"])
def repository_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return (tmp_path / "repo").as_uri()
    server: S3Server = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("bucket")
    request.getfixturevalue("s3_env")
    return f"s3://{bucket}/gc?endpoint={server.endpoint}&insecure=1&region=us-east-1"


async def keys(s: Served) -> list[str]:
    page = await s.stub.ListArtifacts(pb.ListArtifactsRequest(page_size=1000), timeout=TIMEOUT)
    return [a.key for a in page.artifacts]


async def put(s: Served, tmp_path: Path, workflow: str, name: str, **fields: str) -> str:
    src = tmp_path / "payload"
    src.write_text(f"{workflow}:{name}")
    info = await upload_file(
        s.stub, header(workflow, f"{workflow}-pod", name, ".txt", **fields), src, timeout=TIMEOUT,
        metadata=step_metadata(workflow),
    )  # fmt: skip
    return info.key


def test_deletes_only_what_the_workflow_wrote(repository_uri: str, tmp_path: Path) -> None:
    async def main() -> None:
        async with serving(load_catalog(repository_uri, tokens=TOKENS)) as s:
            mine = [await put(s, tmp_path, "wf", n) for n in ("a", "b", "main-logs")]
            other = await put(s, tmp_path, "wf2", "a")
            similar = await put(s, tmp_path, "wf-2", "a")  # a name that merely starts like "wf"
            shared = await put(s, tmp_path, "wf", "report", key="shared/latest.txt")
            await put(s, tmp_path, "wf2", "report", key="shared/latest.txt")  # now wf2's
            own_shared = await put(s, tmp_path, "wf", "summary", key="shared/wf-summary.txt")

            request = pb.DeleteWorkflowArtifactsRequest(
                workflow="wf", keys=[mine[0], other, shared, own_shared, "never/existed"]
            )
            response = await s.stub.DeleteWorkflowArtifacts(request, timeout=TIMEOUT)
            assert (response.deleted, response.complete) == (2, True)
            assert sorted(response.kept_keys) == sorted([other, shared])
            remaining = await keys(s)
            assert mine[0] not in remaining and own_shared not in remaining
            assert {other, shared, similar, mine[1], mine[2]} <= set(remaining)

            sweep = pb.DeleteWorkflowArtifactsRequest(workflow="wf", all_under_prefix=True, keep_keys=[mine[2]])
            response = await s.stub.DeleteWorkflowArtifacts(sweep, timeout=TIMEOUT)
            assert response.deleted == 1 and response.complete
            assert sorted(await keys(s)) == sorted([mine[2], other, similar, shared])
            again = await s.stub.DeleteWorkflowArtifacts(sweep, timeout=TIMEOUT)  # idempotent
            assert again.deleted == 0

            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await s.stub.DeleteWorkflowArtifacts(sweep, timeout=TIMEOUT, metadata=step_metadata("wf"))
            assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED

    asyncio.run(main())


def test_a_passed_deadline_returns_incomplete_and_a_rerun_finishes(tmp_path: Path) -> None:
    async def main() -> None:
        catalog = load_catalog((tmp_path / "repo").as_uri(), tokens=TOKENS)
        async with serving(catalog) as s:
            for i in range(5):
                await put(s, tmp_path, "wf", f"a{i}")
            first = await delete_workflow_objects(
                catalog.default, "wf", ["wf/wf-pod/a0.txt"], all_under_prefix=True, deadline=time.monotonic()
            )
            assert (first.deleted, first.complete) == (0, False)
            plan = GcPlan("wf", [RepositoryPlan("", all_under_prefix=True)])
            outcome = await run_artifact_gc(s.stub, plan)
            assert outcome.deleted == 5
            assert await keys(s) == []

    asyncio.run(main())


def workflow(
    spec_gc: str = "", artifact_gcs: dict[str, str] | None = None, repository: str = ""
) -> workflow_pb2.Workflow:
    outputs = [
        {"name": n, "path": f"/{n}", **({"artifactGC": {"strategy": s}} if s else {})}
        for n, s in (artifact_gcs or {}).items()
    ]
    spec: dict[str, object] = {
        "entrypoint": "main",
        "templates": [{"name": "main", "container": {"image": "x"}, "outputs": {"artifacts": outputs}}],
    }
    if spec_gc:
        spec["artifactGC"] = {"strategy": spec_gc}
    if repository:
        spec["artifactRepositoryRef"] = {"key": repository}
    wf = workflow_from_dict({"metadata": {"name": "wf"}, "spec": spec})
    node = wf.status.nodes["n1"]
    node.template_name = "main"
    for name in artifact_gcs or {}:
        node.outputs.artifacts.add(
            name=name, stored=workflow_pb2.StoredArtifact(key=f"wf/p/{name}", repository=repository)
        )
    return wf


def test_plans_follow_argo_strategies() -> None:
    wf = workflow("OnWorkflowCompletion", {"a": "", "b": "OnWorkflowDeletion", "c": "Never"}, repository="minio")
    on_completion = plan_artifact_gc(wf, "OnWorkflowCompletion")
    assert on_completion.calls == [
        RepositoryPlan("minio", keys=["wf/p/a"], all_under_prefix=True, keep_keys=["wf/p/b", "wf/p/c"])
    ]
    on_deletion = plan_artifact_gc(wf, "OnWorkflowDeletion")
    assert on_deletion.calls == [RepositoryPlan("minio", keys=["wf/p/b"], keep_keys=["wf/p/c"])]

    never = workflow("", {"a": "", "b": "OnWorkflowDeletion"})
    assert plan_artifact_gc(never, "OnWorkflowCompletion").empty
    assert plan_artifact_gc(never, "OnWorkflowDeletion").calls == [RepositoryPlan("", keys=["wf/p/b"])]
    everything = plan_artifact_gc(workflow("OnWorkflowDeletion"), "OnWorkflowDeletion")
    assert everything.calls == [RepositoryPlan("", all_under_prefix=True)]

    with pytest.raises(InvalidSpec) as caught:
        check_strategies(workflow("Sometimes").spec)
    assert caught.value.violations[0].field == "spec.artifactGC.strategy"
    with pytest.raises(InvalidSpec) as caught:
        check_strategies(workflow("", {"a": "Later"}).spec)
    assert caught.value.violations[0].field == "spec.templates[0].outputs.artifacts[0].artifactGC.strategy"


def test_gc_client_raises_domain_errors(tmp_path: Path) -> None:
    async def main() -> None:
        async with serving(load_catalog((tmp_path / "repo").as_uri(), tokens=TOKENS)) as s:
            with pytest.raises(PermissionDenied):
                await run_artifact_gc(
                    s.stub, GcPlan("wf", [RepositoryPlan("", ["wf/p/a"])]), metadata=step_metadata("wf")
                )
            with pytest.raises(InvalidSpec):
                await run_artifact_gc(s.stub, GcPlan("wf", [RepositoryPlan("", ["../x"])]))

    asyncio.run(main())
