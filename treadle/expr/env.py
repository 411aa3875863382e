"""Building the expression environment from Argo's flat variable names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def env_from_flat(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Nest dotted names into maps: {"inputs.parameters.x": "1"} -> {"inputs": {"parameters": {"x": "1"}}}.

    Expressions can then say `inputs.parameters.x` or `inputs.parameters['my-param']`.
    As in Argo (util/expand), a name that is also the prefix of another name is
    dropped in favour of the more specific one: with both `inputs.parameters`
    (all parameters as JSON) and `inputs.parameters.x`, only the second is kept,
    so `inputs.parameters` becomes the map of parameters.
    """
    parents = {name[:index] for name in flat for index, char in enumerate(name) if char == "."}
    env: dict[str, Any] = {}
    for name in sorted(flat):
        if name in parents:
            continue
        *path, leaf = name.split(".")
        node = env
        for part in path:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = flat[name]
    return env
