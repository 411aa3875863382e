"""The domain errors shared by every treadle component.

Services map these to gRPC status codes in one table
(treadle.grpcutil.status); the CLI prints them as one line on stderr.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class TreadleError(Exception):
    """Base class of every error treadle raises on purpose."""


@dataclass(frozen=True)
class FieldViolation:
    """One problem with one field of a request or manifest."""

    field: str
    description: str

    def __str__(self) -> str:
        return f"{self.field}: {self.description}" if self.field else self.description


class InvalidSpec(TreadleError):
    """A manifest or request is not valid. Carries every violation found."""

    def __init__(self, violations: list[FieldViolation] | FieldViolation | str, *, field: str = "") -> None:
        if isinstance(violations, str):
            violations = [FieldViolation(field, violations)]
        elif isinstance(violations, FieldViolation):
            violations = [violations]
        self.violations: list[FieldViolation] = list(violations)
        super().__init__("; ".join(str(v) for v in self.violations))


class NotFound(TreadleError):
    """The named resource does not exist."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"{kind} {name!r} not found")


class AlreadyExists(TreadleError):
    """A resource with that name exists already."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"{kind} {name!r} already exists")


@dataclass
class PreconditionViolation:
    """A state conflict: the resource is not in a state that allows the call."""

    type: str
    subject: str
    description: str


class FailedPrecondition(TreadleError):
    """The call conflicts with the resource's current state."""

    def __init__(self, description: str, *, subject: str = "", type: str = "STATE") -> None:
        self.violation = PreconditionViolation(type=type, subject=subject, description=description)
        super().__init__(description)


class PermissionDenied(TreadleError):
    """The caller's credentials do not allow the call (for example a step token for another node)."""


class Unavailable(TreadleError):
    """A dependency could not be reached; the call may be retried."""


@dataclass
class DataLoss(TreadleError):
    """Bytes did not arrive intact (a digest mismatch)."""

    message: str = field(default="")

    def __str__(self) -> str:
        return self.message
