"""treadle: a workflow engine for Steps and DAG workflows, built as gRPC services."""

__version__ = "0.1.0"
