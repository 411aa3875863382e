"""Input artifact sources outside the repository (s3, http, git), fetched by the artifact service.

The executor asks ArtifactService.ImportArtifact to fetch them, so the
credentials they need stay with the service. ``describe_source`` is shared by
both sides: it names a source in messages without any credential or query string.
"""

from .describe import describe_source, import_kind, redact_url

__all__ = ["describe_source", "import_kind", "redact_url"]
