"""treadle's own metrics, through the OpenTelemetry metrics API.

Instruments are created on the global meter provider's proxy, so they may be
made before `configure_telemetry` runs and cost next to nothing while metrics
are off. Prometheus sees them with dots turned into underscores and unit and
`_total` suffixes added (treadle.nodes.finished -> treadle_nodes_finished_total).
"""

from __future__ import annotations

from functools import cache

from opentelemetry import metrics
from opentelemetry.metrics import Counter, Histogram, Meter

METER_NAME = "treadle"
# Bucket bounds (seconds) for step durations and scheduling latency: 1 ms to 1 hour.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


def meter() -> Meter:
    return metrics.get_meter(METER_NAME)


@cache
def artifact_bytes() -> Counter:
    """Bytes ArtifactService moved, by treadle.direction: "in" (uploads) or "out" (downloads)."""
    return meter().create_counter("treadle.artifacts.transferred", unit="By", description="Artifact bytes moved")


@cache
def workflows_finished() -> Counter:
    return meter().create_counter("treadle.workflows.finished", description="Workflows that ended, by phase")


@cache
def workflows_started() -> Counter:
    return meter().create_counter("treadle.workflows.started", description="Workflows the scheduler started")


@cache
def nodes_started() -> Counter:
    return meter().create_counter("treadle.nodes.started", description="Nodes that started, by type")


@cache
def nodes_finished() -> Counter:
    return meter().create_counter("treadle.nodes.finished", description="Nodes that ended, by type and phase")


@cache
def step_duration() -> Histogram:
    return meter().create_histogram(
        "treadle.step.duration",
        unit="s",
        description="Pod node duration, from launch to its report, by phase",
        explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
    )


@cache
def scheduling_latency() -> Histogram:
    return meter().create_histogram(
        "treadle.scheduling.latency",
        unit="s",
        description="From a step being ready to its executor starting (fetching its context)",
        explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
    )
