"""What a workload measured: figures, their targets, the peers' figures, and notes."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["ok", "failed", "skipped"]

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Target:
    """A bound a figure must meet, as the issue states it."""

    op: Literal["<", "<=", ">", ">="]
    bound: float
    text: str

    def met(self, value: float | None) -> bool | None:
        """None when there is no value to judge."""
        return None if value is None else _OPERATORS[self.op](value, self.bound)


@dataclass
class Figure:
    """One measured number; peers holds the same number measured on each peer, where it applies."""

    name: str
    label: str
    value: float | None
    unit: str
    target: Target | None = None
    peers: dict[str, float | None] = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.value)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["met"] = self.met
        return data


@dataclass
class PeerRun:
    """One run of a workload on a peer."""

    ok: bool
    # The whole process, from launch to exit: what a user waits for.
    wall_seconds: float | None = None
    # The workflow alone, without the tool's start-up (see each peer's module for how).
    warm_seconds: float | None = None
    answer: str | None = None
    error: str = ""

    @classmethod
    def failed(cls, error: str) -> PeerRun:
        return cls(ok=False, error=error)


@dataclass
class WorkloadResult:
    name: str
    status: Status
    # What was run: sizes, concurrency, modes.
    params: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    # Raw measurements behind the figures (server usage, every peer run, per-size data).
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # How long the workload took in the suite, set-up and peers included.
    elapsed_seconds: float = 0.0

    def figure(self, name: str) -> Figure | None:
        return next((f for f in self.figures if f.name == name), None)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "params": self.params,
            "figures": {f.name: f.as_json() for f in self.figures},
            "details": self.details,
            "notes": self.notes,
            "elapsed_seconds": round(self.elapsed_seconds, 2),
        }


def peer_run_json(run: PeerRun) -> dict[str, Any]:
    return asdict(run)
