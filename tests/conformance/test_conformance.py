"""Argo language conformance: every manifest in manifests/ runs on one server and meets its `# expect:` header."""

from __future__ import annotations

import pytest
from conformance_harness import Case, Server, all_cases, check_outcome, check_rejected, run_case

# Whole workflows through a real `treadle serve all` process.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]
CASES = all_cases()


def _param(case: Case) -> object:
    reason = case.expect.get("xfail")
    marks = [pytest.mark.xfail(strict=True, reason=str(reason))] if reason else []
    return pytest.param(case, id=case.name, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_manifest(server: Server, case: Case) -> None:
    if case.rejected:
        check_rejected(server, case)
        return
    check_outcome(case, run_case(server, case))


def test_there_are_at_least_sixty_manifests() -> None:
    assert len(CASES) >= 60
