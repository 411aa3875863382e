"""Structured logs: one JSON object per line, carrying the current trace_id and span_id.

    {"time": "2025-01-02T03:04:05.678Z", "level": "INFO", "logger": "treadle.services.scheduler",
     "message": "...", "service": "treadle", "trace_id": "4bf9...", "span_id": "00f0..."}

Only the record's message and exception are written, never the call's metadata,
so step tokens and other credentials stay out of the logs.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import TextIO

from opentelemetry import trace

# `json` or `text`; children (the executor host) inherit it through the environment.
LOG_FORMAT_ENV = "TREADLE_LOG_FORMAT"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str = "") -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self._service:
            entry["service"] = self._service
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = f"{span_context.trace_id:032x}"
            entry["span_id"] = f"{span_context.span_id:016x}"
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str | int, *, service: str, log_format: str = "", stream: TextIO | None = None) -> None:
    """Set up the root logger: JSON (the default for services) or text, per log_format or $TREADLE_LOG_FORMAT."""
    chosen = (log_format or os.environ.get(LOG_FORMAT_ENV) or "json").lower()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service) if chosen == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
