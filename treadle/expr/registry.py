"""How built-in functions are declared: a name, an implementation and the argument counts it takes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from treadle.expr.errors import Failure

Implementation = Callable[..., Any]
F = TypeVar("F", bound=Implementation)


@dataclass(frozen=True)
class Builtin:
    name: str
    implementation: Implementation
    min_args: int
    max_args: int | None  # None: any number

    def check_arity(self, count: int) -> None:
        if count < self.min_args or (self.max_args is not None and count > self.max_args):
            if self.max_args is None:
                expected = f"at least {self.min_args}"
            elif self.min_args == self.max_args:
                expected = str(self.min_args)
            else:
                expected = f"{self.min_args} to {self.max_args}"
            plural = "" if expected == "1" else "s"
            raise Failure(f"{self.name} takes {expected} argument{plural}, not {count}")


class Registry:
    """A table of built-ins, filled by the `function` decorator."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.functions: dict[str, Builtin] = {}

    def function(self, name: str, arity: int | tuple[int, int | None]) -> Callable[[F], F]:
        """Register the decorated function as `prefix + name`.

        arity is an exact count, or (fewest, most) with most None for any number.
        """
        fewest, most = (arity, arity) if isinstance(arity, int) else arity

        def register(implementation: F) -> F:
            full_name = self.prefix + name
            self.functions[full_name] = Builtin(full_name, implementation, fewest, most)
            return implementation

        return register

    def alias(self, name: str, existing: str) -> None:
        builtin = self.functions[self.prefix + existing]
        full_name = self.prefix + name
        self.functions[full_name] = Builtin(full_name, builtin.implementation, builtin.min_args, builtin.max_args)
