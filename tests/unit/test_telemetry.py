"""treadle.telemetry: settings from OTEL_* variables, the shared ids, W3C context strings, JSON logs."""

from __future__ import annotations

import io
import json
import logging

import pytest
from opentelemetry import trace

from treadle.telemetry.context import (
    context_from_metadata,
    context_with_parent,
    format_traceparent,
    parse_traceparent,
    remote_span_context,
)
from treadle.telemetry.ids import new_workflow_trace_id, node_span_id, root_span_id, trace_start_time
from treadle.telemetry.logs import JsonFormatter
from treadle.telemetry.settings import TelemetryConfigError, read_settings


def test_everything_is_off_by_default() -> None:
    settings = read_settings("treadle", {})
    assert not settings.tracing and not settings.metrics
    assert settings.service_name == "treadle"
    assert settings.traces_protocol == "grpc"


def test_settings_follow_the_otel_variables() -> None:
    env = {
        "OTEL_TRACES_EXPORTER": "otlp,console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc",
        "OTEL_SERVICE_NAME": "mill",
    }
    settings = read_settings("treadle", env, prometheus_port=9000)
    assert settings.traces_exporters == ("otlp", "console")
    assert settings.metrics_exporters == ("prometheus",)  # --metrics-port adds it
    assert settings.prometheus_port == 9000
    assert (settings.traces_protocol, settings.metrics_protocol) == ("http/protobuf", "grpc")
    assert settings.service_name == "mill"
    assert not read_settings("t", {**env, "OTEL_SDK_DISABLED": "true"}).tracing


@pytest.mark.parametrize(
    "env",
    [{"OTEL_TRACES_EXPORTER": "jaeger"}, {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}],
)
def test_unknown_values_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(TelemetryConfigError):
        read_settings("treadle", env)


def test_workflow_ids_derive_from_the_trace_id() -> None:
    trace_id = new_workflow_trace_id(1_700_000_000.123)
    assert trace_start_time(trace_id, near=1_700_000_001) == pytest.approx(1_700_000_000.123)
    assert trace_start_time(trace_id, near=1_800_000_000) is None  # not a treadle-made id: not trusted
    assert root_span_id(trace_id) == trace_id & (2**64 - 1) != 0
    # Node span ids: stable for a node, distinct across nodes and across traces.
    assert node_span_id(trace_id, "wf-1") == node_span_id(trace_id, "wf-1")
    assert node_span_id(trace_id, "wf-1") != node_span_id(trace_id, "wf-2")
    assert node_span_id(trace_id, "wf-1") != node_span_id(new_workflow_trace_id(), "wf-1")
    assert len({new_workflow_trace_id(1.0) for _ in range(100)}) == 100


def test_traceparent_round_trips() -> None:
    context = remote_span_context(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7)
    text = format_traceparent(context)
    assert text == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    parsed = parse_traceparent(text)
    assert parsed is not None and (parsed.trace_id, parsed.span_id) == (context.trace_id, context.span_id)
    assert parse_traceparent("") is None and parse_traceparent("garbage") is None
    assert context_from_metadata([("x-treadle-step-token", "secret")]) is None
    incoming = context_from_metadata([("traceparent", text.encode())])
    assert incoming is not None
    assert trace.get_current_span(incoming).get_span_context().span_id == context.span_id


def test_json_logs_carry_the_current_trace_and_no_more_than_the_message() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("treadle"))
    logger = logging.getLogger("test.telemetry.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("outside any span")
        context = remote_span_context(0xABC, 0xDEF)
        with trace.use_span(trace.get_current_span(context_with_parent(context))):
            logger.warning("step %s failed", "a")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["message"] == "outside any span" and "trace_id" not in first
    assert second == {
        "time": second["time"],
        "level": "WARNING",
        "logger": "test.telemetry.json",
        "message": "step a failed",
        "service": "treadle",
        "trace_id": f"{0xABC:032x}",
        "span_id": f"{0xDEF:016x}",
    }
    assert second["time"].endswith("Z")
