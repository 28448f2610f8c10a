"""The conformance document and the golden list follow the registry."""

from __future__ import annotations

from fixtures.requirements import load
from reports import conformance
from reports.conformance import DOC, golden_ids, render


def test_registry_matches_the_golden_list() -> None:
    registry, golden = set(load()), set(golden_ids())
    assert registry == golden, (
        f"registry drifted from suites/requirements.golden: added {sorted(registry - golden)}, "
        f"dropped {sorted(golden - registry)}; if intended, run "
        "`python -m reports.conformance --golden`"
    )


def test_conformance_document_is_current() -> None:
    expected = render(load(), conformance.tests_by_requirement())
    assert DOC.read_text() == expected, (
        "docs/conformance.md is stale: python -m reports.conformance"
    )


def test_document_lists_every_requirement_with_its_tests() -> None:
    requirements = load()
    page = render(requirements, {"NS-01": ["suites/namespaces/test_uts.py::test_x"]})
    assert all(f"[{req_id}](" in page for req_id in requirements)
    assert "`suites/namespaces/test_uts.py::test_x`" in page
    assert "**no test**" in page  # the others, in this synthetic map
