"""Naming an input artifact's source in messages, without credentials."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from treadle.workflow.v1 import workflow_pb2

ImportKind = Literal["s3", "http", "git"]


def import_kind(artifact: workflow_pb2.Artifact) -> ImportKind | None:
    """Which outside source the artifact names, if it names one (ImportArtifact fetches these)."""
    for kind in ("s3", "http", "git"):
        if artifact.HasField(kind):
            return kind
    return None


def describe_source(artifact: workflow_pb2.Artifact) -> str:
    """For example "http https://example.com/data.csv" or "artifact wf/pod/out.tgz"."""
    if artifact.HasField("raw"):
        return "raw data"
    if artifact.HasField("s3"):
        s3 = artifact.s3
        where = f"s3://{s3.bucket}/" if s3.bucket else "s3 key "
        key = s3.key + (f"/{artifact.sub_path}" if artifact.sub_path else "")
        return f"{where}{key}" + (f" at {redact_url('//' + s3.endpoint)[2:]}" if s3.endpoint else "")
    if artifact.HasField("http"):
        return f"http {redact_url(artifact.http.url)}"
    if artifact.HasField("git"):
        revision = artifact.git.revision or artifact.git.branch or "the default branch"
        return f"git {redact_url(artifact.git.repo)} at {revision}"
    inside = f" (subPath {artifact.sub_path})" if artifact.sub_path else ""
    if artifact.HasField("stored") and artifact.stored.key:
        repository = f" in repository {artifact.stored.repository!r}" if artifact.stored.repository else ""
        return f"artifact {artifact.stored.key}{repository}{inside}"
    reference = getattr(artifact, "from")  # a Python keyword
    if reference:
        return f"{reference}{inside}"
    return "no source"


def redact_url(url: str) -> str:
    """The URL without user info, query or fragment, which may carry credentials (signed URLs, tokens)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    query = "..." if parts.query else ""
    return urlunsplit((parts.scheme, host, parts.path, query, ""))
