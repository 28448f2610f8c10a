"""The optional Allure HTML step renders a run's allure-results into one file, offline."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed (the step needs it)")
def test_allure_html_renders_results_in_an_isolated_netns(tmp_path: Path) -> None:
    results = tmp_path / "allure-results"
    results.mkdir()
    (results / "0-result.json").write_text(
        json.dumps(
            {
                "uuid": "0",
                "historyId": "h0",
                "name": "test_cts_marker_name",
                "status": "passed",
                "stage": "finished",
                "start": 0,
                "stop": 1,
                "labels": [{"name": "story", "value": "NS-01"}],
            }
        )
    )
    out = tmp_path / "report"
    done = subprocess.run(
        [str(REPO / "scripts" / "allure-html"), str(results), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    page = (out / "index.html").read_text()
    assert len(page) > 100_000  # one self-contained file (scripts and data inlined)
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "cts-allure-" not in names, "the isolated netns was left behind"
