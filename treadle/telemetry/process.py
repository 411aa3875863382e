"""One call that sets up a server process's logs, traces and metrics (`treadle serve`, `treadle run`)."""

from __future__ import annotations

import logging
import os

from treadle.telemetry.logs import LOG_FORMAT_ENV, configure_logging
from treadle.telemetry.providers import Telemetry, configure_telemetry

log = logging.getLogger(__name__)


def observe_process(
    service: str, *, log_level: str, log_format: str = "json", metrics_port: int | None = None, metrics_host: str = ""
) -> Telemetry:
    """JSON (or text) logs on stderr, then the OTEL_* exporters and, with metrics_port, /metrics.

    The log format is exported as $TREADLE_LOG_FORMAT so that child processes (the
    executor host) log the same way; they inherit the OTEL_* variables as they are.
    Raises ValueError for an OTEL_* value treadle does not know, OSError when the
    metrics port cannot be bound.
    """
    os.environ[LOG_FORMAT_ENV] = log_format
    configure_logging(log_level, service=service, log_format=log_format)
    telemetry = configure_telemetry(service, metrics_port=metrics_port, metrics_host=metrics_host)
    if telemetry.metrics_address:
        log.info("serving metrics at http://%s/metrics", telemetry.metrics_address)
    return telemetry


def host_of(listen: str) -> str:
    """The host part of HOST:PORT, without IPv6 brackets; "" for a bare :PORT."""
    return listen.rpartition(":")[0].strip("[]")
