"""ArtifactService: the artifact repository behind a streaming gRPC API."""
