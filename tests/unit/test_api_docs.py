"""docs/api.md is generated from the protos by tools/gen_api_docs.py and must match them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_api_docs", REPO / "tools" / "gen_api_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_docs_api_md_is_fresh() -> None:
    expected = generator().render()
    actual = (REPO / "docs" / "api.md").read_text()
    assert actual == expected, "docs/api.md is stale; run: .venv/bin/python tools/gen_api_docs.py"


def test_every_rpc_message_and_field_of_the_public_api_is_documented() -> None:
    text = (REPO / "docs" / "api.md").read_text()
    from treadle.admission.v1 import admission_pb2

    service = admission_pb2.DESCRIPTOR.services_by_name["AdmissionService"]
    for method in service.methods:
        assert f"#### `{method.name}`" in text
        for message in (method.input_type, method.output_type):
            assert f"### `{message.name}`" in text
            for field in message.fields:
                assert f"| `{field.name}` | `{field.json_name}` |" in text


def test_the_error_table_covers_every_row_of_the_status_table() -> None:
    from treadle.grpcutil.status import STATUS_TABLE

    text = (REPO / "docs" / "api.md").read_text()
    for error, code in STATUS_TABLE:
        assert f"| {code.name} | `{error.__name__}` |" in text
    for code in ("DEADLINE_EXCEEDED", "INTERNAL"):
        assert f"| {code} |" in text
