"""Tracer and meter providers for one process, configured from TelemetrySettings.

    telemetry = configure_telemetry("treadle")          # reads OTEL_* variables
    ...
    telemetry.shutdown()                                  # flushes what is batched

With every exporter off (the default) nothing is installed: the OpenTelemetry
API stays no-op, spans cost next to nothing, and W3C context still passes
through the interceptors so that logs carry trace ids.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

from treadle.telemetry.ids import preset
from treadle.telemetry.settings import TelemetrySettings, read_settings

log = logging.getLogger(__name__)

# Seconds shutdown() may spend flushing spans and metrics still batched.
SHUTDOWN_TIMEOUT_SECONDS = 5.0


@dataclass
class Telemetry:
    """What configure_telemetry installed in this process."""

    settings: TelemetrySettings
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    # host:port at which /metrics is served, when Prometheus is on.
    metrics_address: str = ""
    _http_server: Any = field(default=None, repr=False)

    def force_flush(self) -> None:
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush(int(SHUTDOWN_TIMEOUT_SECONDS * 1000))

    def shutdown(self) -> None:
        """Flush and stop the exporters (the process is about to exit)."""
        global _installed
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush(int(SHUTDOWN_TIMEOUT_SECONDS * 1000))
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown(timeout_millis=SHUTDOWN_TIMEOUT_SECONDS * 1000)
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()
        if _installed is self:
            _installed = None


class PresetIdGenerator(IdGenerator):
    """Random ids, except inside `preset_ids`, where the SDK gets the chosen ones."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        chosen = preset()
        return chosen[1] if chosen is not None else self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        chosen = preset()
        return chosen[0] if chosen is not None else self._random.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        return preset() is None


_installed: Telemetry | None = None


def installed() -> Telemetry | None:
    return _installed


def tracing_enabled() -> bool:
    """True when this process records spans (an SDK tracer provider is installed)."""
    return _installed is not None and _installed.tracer_provider is not None


def configure_telemetry(service_name: str, *, metrics_port: int | None = None, metrics_host: str = "") -> Telemetry:
    """Install providers as the OTEL_* variables ask; once per process (later calls return the first).

    metrics_port (`treadle serve --metrics-port`) turns the Prometheus endpoint on; metrics_host is the
    address it binds (default OTEL_EXPORTER_PROMETHEUS_HOST, else localhost).
    """
    global _installed
    if _installed is not None:
        return _installed
    settings = read_settings(service_name, prometheus_port=metrics_port)
    resource = Resource.create({"service.name": settings.service_name})
    telemetry = Telemetry(settings)
    if settings.tracing:
        provider = TracerProvider(resource=resource, id_generator=PresetIdGenerator())
        for name in settings.traces_exporters:
            provider.add_span_processor(BatchSpanProcessor(_span_exporter(name, settings)))
        trace.set_tracer_provider(provider)
        telemetry.tracer_provider = provider
    if settings.metrics:
        readers: list[MetricReader] = []
        for name in settings.metrics_exporters:
            if name == "prometheus":
                host = metrics_host or settings.prometheus_host
                reader, server, address = _prometheus(host, settings.prometheus_port)
                readers.append(reader)
                telemetry._http_server, telemetry.metrics_address = server, address
            else:
                readers.append(PeriodicExportingMetricReader(_metric_exporter(name, settings)))
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        metrics.set_meter_provider(meter_provider)
        telemetry.meter_provider = meter_provider
    _installed = telemetry
    if settings.tracing or settings.metrics:
        log.info(
            "telemetry: traces to %s, metrics to %s",
            ", ".join(settings.traces_exporters) or "nowhere",
            ", ".join(settings.metrics_exporters) or "nowhere",
        )
    return telemetry


def _span_exporter(name: str, settings: TelemetrySettings) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter(service_name=settings.service_name)
    if settings.traces_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter

    return HttpSpanExporter()


def _metric_exporter(name: str, settings: TelemetrySettings) -> Any:
    if name == "console":
        return ConsoleMetricExporter()
    if settings.metrics_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter()
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter

    return HttpMetricExporter()


def _prometheus(host: str, port: int) -> tuple[MetricReader, Any, str]:
    """A Prometheus reader with its own registry, served at http://host:port/metrics."""
    import prometheus_client
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    registry = prometheus_client.CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry)
    server, _thread = prometheus_client.start_http_server(port, addr=host, registry=registry)
    bound_host, bound_port = server.server_address[:2]
    return reader, server, f"{bound_host!s}:{bound_port}"
