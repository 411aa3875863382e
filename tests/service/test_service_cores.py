"""The cores behind the admission and output servicers never import grpc, directly or through a helper."""

from __future__ import annotations

import subprocess
import sys

CORE_MODULES = (
    "treadle.services.admission.core",
    "treadle.services.admission.reconciler",
    "treadle.services.admission.submission",
    "treadle.services.outputs.core",
)


def test_service_cores_import_no_grpc() -> None:
    # A fresh interpreter, so that modules other tests loaded do not count.
    probe = (
        f"import sys; import {', '.join(CORE_MODULES)}; print(sorted(m for m in sys.modules if m.startswith('grpc')))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
