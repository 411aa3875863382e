"""What to export, read from the standard OTEL_* environment variables.

Only the choices treadle makes itself are read here. The exporters read their
own variables (OTEL_EXPORTER_OTLP_ENDPOINT, ..._HEADERS, ..._TIMEOUT, the
per-signal variants), the batch span processor reads OTEL_BSP_*, the periodic
metric reader OTEL_METRIC_EXPORT_INTERVAL, and the resource
OTEL_RESOURCE_ATTRIBUTES.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

TRACES_EXPORTERS = ("otlp", "console", "none")
METRICS_EXPORTERS = ("otlp", "console", "prometheus", "none")
OTLP_PROTOCOLS = ("grpc", "http/protobuf")
DEFAULT_PROMETHEUS_HOST = "localhost"
DEFAULT_PROMETHEUS_PORT = 9464


class TelemetryConfigError(ValueError):
    """An OTEL_* variable holds a value treadle does not understand."""


@dataclass(frozen=True)
class TelemetrySettings:
    service_name: str
    # Each of TRACES_EXPORTERS except "none"; empty means tracing is off.
    traces_exporters: tuple[str, ...] = ()
    metrics_exporters: tuple[str, ...] = ()
    traces_protocol: str = "grpc"
    metrics_protocol: str = "grpc"
    prometheus_host: str = DEFAULT_PROMETHEUS_HOST
    prometheus_port: int = DEFAULT_PROMETHEUS_PORT

    @property
    def tracing(self) -> bool:
        return bool(self.traces_exporters)

    @property
    def metrics(self) -> bool:
        return bool(self.metrics_exporters)


def _exporters(env: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(word.strip().lower() for word in env.get(name, "none").split(",") if word.strip()))
    unknown = [word for word in chosen if word not in allowed]
    if unknown:
        choices = ", ".join(allowed)
        raise TelemetryConfigError(f"{name}: unknown exporter(s) {', '.join(unknown)}; choose from {choices}")
    return tuple(word for word in chosen if word != "none") if "none" not in chosen else ()


def _protocol(env: Mapping[str, str], signal: str) -> str:
    name = f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL"
    protocol = env.get(name) or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc"
    if protocol not in OTLP_PROTOCOLS:
        raise TelemetryConfigError(f"{name}: unknown protocol {protocol!r}; choose from {', '.join(OTLP_PROTOCOLS)}")
    return protocol


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() == "true"


def read_settings(
    default_service_name: str, env: Mapping[str, str] | None = None, *, prometheus_port: int | None = None
) -> TelemetrySettings:
    """The settings env (default os.environ) asks for. prometheus_port (`--metrics-port`) adds Prometheus.

    Raises TelemetryConfigError for a value treadle does not understand.
    """
    env = os.environ if env is None else env
    name = env.get("OTEL_SERVICE_NAME") or default_service_name
    if _flag(env, "OTEL_SDK_DISABLED"):
        return TelemetrySettings(service_name=name)
    metrics = _exporters(env, "OTEL_METRICS_EXPORTER", METRICS_EXPORTERS)
    if prometheus_port is not None and "prometheus" not in metrics:
        metrics += ("prometheus",)
    port_text = env.get("OTEL_EXPORTER_PROMETHEUS_PORT", "")
    try:
        port = prometheus_port if prometheus_port is not None else int(port_text or DEFAULT_PROMETHEUS_PORT)
    except ValueError:
        raise TelemetryConfigError(f"OTEL_EXPORTER_PROMETHEUS_PORT: {port_text!r} is not a port number") from None
    return TelemetrySettings(
        service_name=name,
        traces_exporters=_exporters(env, "OTEL_TRACES_EXPORTER", TRACES_EXPORTERS),
        metrics_exporters=metrics,
        traces_protocol=_protocol(env, "TRACES"),
        metrics_protocol=_protocol(env, "METRICS"),
        prometheus_host=env.get("OTEL_EXPORTER_PROMETHEUS_HOST") or DEFAULT_PROMETHEUS_HOST,
        prometheus_port=port,
    )
