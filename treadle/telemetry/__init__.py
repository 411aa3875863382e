"""Telemetry for every treadle process: traces, metrics and structured logs (OpenTelemetry).

- `providers.configure_telemetry(service)`: providers and exporters from the OTEL_* variables.
- `interceptors`: gRPC interceptors carrying W3C context between processes.
- `ids`: the workflow trace id and the derived root and node span ids that let
  spans made in different processes, at different times, form one tree.
- `logs.configure_logging`: JSON log lines with trace_id and span_id.
- `names`: span and attribute names; `metrics`: treadle's instruments;
  `spans`: spans emitted after the fact; `receiver`: an OTLP receiver for tests.

Modules are imported where they are used (the package imports nothing itself),
so that a gRPC channel does not pay for the SDK.
"""
