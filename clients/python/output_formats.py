"""Printing documents in the -o formats: json (indented, as argo prints it) and yaml."""

from __future__ import annotations

import json
from typing import Any


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def print_yaml(value: Any) -> None:
    """value as block YAML, keys in their given order; a list prints as a YAML list."""
    import yaml

    print(yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False), end="")


def print_document(value: Any, output: str) -> None:
    """value in -o json or -o yaml."""
    if output == "yaml":
        print_yaml(value)
    else:
        print_json(value)
