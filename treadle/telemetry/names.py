"""Span and attribute names.

OpenTelemetry semantic conventions where one exists (rpc.*, process.exit.code,
service.name); treadle's own under ``treadle.*``. One place, so that the
scheduler, the executor and the tests agree.
"""

from __future__ import annotations

# --- semantic conventions (https://opentelemetry.io/docs/specs/semconv/) ------------------
RPC_SYSTEM = "rpc.system"
RPC_SERVICE = "rpc.service"
RPC_METHOD = "rpc.method"
RPC_GRPC_STATUS_CODE = "rpc.grpc.status_code"
PROCESS_EXIT_CODE = "process.exit.code"
ERROR_TYPE = "error.type"
# Metric: duration of an RPC as the server saw it (seconds).
RPC_SERVER_CALL_DURATION = "rpc.server.call.duration"

# --- treadle's own attributes ------------------------------------------------------------
WORKFLOW_NAME = "treadle.workflow.name"
WORKFLOW_UID = "treadle.workflow.uid"
NODE_ID = "treadle.node.id"
NODE_NAME = "treadle.node.name"
NODE_TYPE = "treadle.node.type"
TEMPLATE = "treadle.template"
ATTEMPT = "treadle.attempt"
PHASE = "treadle.phase"
ARTIFACT_NAME = "treadle.artifact.name"
ARTIFACT_KEY = "treadle.artifact.key"
ARTIFACT_BYTES = "treadle.artifact.size_bytes"
PARAMETER_NAME = "treadle.parameter.name"
DIRECTION = "treadle.direction"

# --- span names of one workflow's trace ----------------------------------------------------
# The root is "workflow <name>", each node "node <display name>"; below a pod node:
SPAN_QUEUE = "queue"
SPAN_LAUNCH = "launch"
SPAN_INIT = "executor.init"
SPAN_MAIN = "executor.main"
SPAN_WAIT = "executor.wait"
SPAN_REPORT = "outputs.report"
SPAN_DOWNLOAD = "artifact.download"
SPAN_UPLOAD = "artifact.upload"
SPAN_PARAMETER = "parameter"


def workflow_span_name(workflow: str) -> str:
    return f"workflow {workflow}"


def node_span_name(display_name: str) -> str:
    return f"node {display_name}"
