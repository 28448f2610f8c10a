"""The compliance matrix page: merged targets, grid and chart, self-contained; rendered in
headless Chromium (inside a network namespace with only `lo`, so nothing can leave)."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reports.matrix import main, merge, percentages, render

REQS = {
    "NS-01": ("namespaces", "MUST"),
    "CG-05": ("cgroups", "MUST"),
    "CG-20": ("cgroups", "SHOULD"),
}


def compliance(target: str, statuses: dict[str, str]) -> dict[str, Any]:
    requirements = {}
    for req_id, (section, level) in REQS.items():
        status = statuses.get(req_id, "untested")
        detail = {"failed": "AssertionError: boom", "skipped": "lacks capability 'x'"}.get(
            status, ""
        )
        tests = (
            []
            if status == "untested"
            else [{"nodeid": f"suites/x.py::t[{target}]", "outcome": status, "detail": detail}]
        )
        requirements[req_id] = {
            "id": req_id,
            "section": section,
            "level": level,
            "statement": f"{req_id} holds",
            "reference": f"https://example.org/{req_id}",
            "results": {target: {"status": status, "tests": tests}},
        }
    return {"targets": {target: {"version": f"{target} 1.0"}}, "requirements": requirements}


DOCS = [
    compliance("docker", {"NS-01": "passed", "CG-05": "passed", "CG-20": "deviation"}),
    compliance("podman", {"NS-01": "passed", "CG-05": "failed", "CG-20": "skipped"}),
]


def test_merge_and_percentages() -> None:
    merged = merge(DOCS)
    assert list(merged["targets"]) == ["docker", "podman"]
    counts = percentages(merged)
    assert counts["docker"]["passed"] == 2
    assert counts["docker"]["deviation"] == 1
    assert counts["podman"] == {
        "failed": 1,
        "deviation": 0,
        "passed": 1,
        "skipped": 1,
        "untested": 0,
    }


def test_page_is_self_contained_and_complete() -> None:
    page = render(merge(DOCS))
    assert "<script" not in page, "the page must not run scripts"
    assert "src=" not in page, "the page must not load anything"
    assert page.count('<tr id="') == 3
    assert page.count('class="failed"') == 1
    assert "AssertionError: boom" in page
    assert "lacks capability" in page
    assert re.search(r'<span class="pct">67%</span>', page)  # docker: 2 of 3 applicable
    assert 'href="https://example.org/CG-05"' in page


def test_cli_writes_the_page(tmp_path: Path) -> None:
    inputs = []
    for index, doc in enumerate(DOCS):
        path = tmp_path / f"run{index}" / "compliance.json"
        path.parent.mkdir()
        path.write_text(json.dumps(doc))
        (path.parent / "report.html").write_text("<html></html>")
        inputs.append(str(path))
    out = tmp_path / "out" / "compliance.html"
    assert main([*inputs, "-o", str(out)]) == 0
    assert 'href="../run1/report.html"' in out.read_text()


@pytest.fixture
def isolated_netns() -> Iterator[str]:
    name = f"cts-iso-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="chromium is not installed (scripts/setup installs it)"
)
def test_chromium_renders_grid_and_chart(tmp_path: Path, isolated_netns: str) -> None:
    page = tmp_path / "compliance.html"
    page.write_text(render(merge(DOCS)))
    browser = [
        "ip",
        "netns",
        "exec",
        isolated_netns,
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--hide-scrollbars",
        "--window-size=1200,900",
    ]
    dom = subprocess.run(
        [*browser, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert 'id="grid"' in dom, dom[:500]
    assert dom.count("<tr id=") == 3, dom[:500]
    assert re.search(r'<svg id="chart"', dom)
    assert dom.count('class="bar') >= 4
    shot = tmp_path / "matrix.png"
    subprocess.run(
        [*browser, f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 5000
