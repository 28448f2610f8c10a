"""The compliance matrix: requirements × targets from one or more compliance.json files.

    python -m reports.matrix reports/out/*/compliance.json -o reports/out/compliance.html

One self-contained HTML file (inline CSS and SVG, no scripts, no external fetches), grouped
by seed section; each cell says pass / fail / deviation / skip (with the reason) / untested,
failing cells carry the test output, and each requirement links to its reference.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from reports.compliance import VERDICTS

COLOURS = {
    "passed": "#2e7d32",
    "failed": "#c62828",
    "deviation": "#ef6c00",
    "skipped": "#9e9e9e",
    "untested": "#e0e0e0",
}
CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#212121}
table.grid{border-collapse:collapse;width:100%;font-size:13px}
.grid th,.grid td{border:1px solid #ccc;padding:4px 6px;vertical-align:top;text-align:left}
.grid th.section{background:#eceff1;font-size:14px}
td.passed{background:#e8f5e9}td.failed{background:#ffebee}td.deviation{background:#fff3e0}
td.skipped{background:#f5f5f5;color:#616161}td.untested{background:#fafafa;color:#9e9e9e}
.level{font-size:11px;padding:1px 4px;border-radius:3px;background:#eceff1}
details pre{white-space:pre-wrap;max-width:60em;font-size:11px}
"""


def merge(documents: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Fold several compliance.json documents into one; later ones win per target."""
    merged: dict[str, Any] = {"targets": {}, "requirements": {}, "sources": {}}
    for doc in documents:
        merged["targets"].update(doc["targets"])
        for target in doc["targets"]:
            merged["sources"][target] = doc.get("_source", "")
        for req_id, req in doc["requirements"].items():
            row = merged["requirements"].setdefault(req_id, {**req, "results": {}})
            row["results"].update({t: r for t, r in req["results"].items() if t in doc["targets"]})
    return merged


def percentages(merged: dict[str, Any]) -> dict[str, dict[str, int]]:
    counts = {t: dict.fromkeys(VERDICTS, 0) for t in merged["targets"]}
    for req in merged["requirements"].values():
        for target in merged["targets"]:
            status = req["results"].get(target, {"status": "untested"})["status"]
            counts[target][status] += 1
    return counts


def chart(counts: dict[str, dict[str, int]]) -> str:
    """Stacked horizontal bars per target, as inline SVG."""
    width, bar, gap, label = 520, 22, 10, 160
    rows = []
    for index, (target, c) in enumerate(counts.items()):
        total = sum(c.values()) or 1
        y, x = index * (bar + gap), float(label)
        rows.append(f'<text x="0" y="{y + 16}" font-size="13">{escape(target)}</text>')
        for verdict in VERDICTS:
            w = (width - label) * c[verdict] / total
            if w:
                rows.append(
                    f'<rect class="bar {verdict}" x="{x:.1f}" y="{y}" width="{w:.1f}" '
                    f'height="{bar}" fill="{COLOURS[verdict]}"><title>{verdict}: {c[verdict]}'
                    "</title></rect>"
                )
            x += w
    height = len(counts) * (bar + gap)
    return (
        f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
        + "".join(rows)
        + "</svg>"
    )


def cell(target: str, result: dict[str, Any], report: str) -> str:
    status = result["status"]
    tests = result.get("tests", [])
    body = escape(status)
    reasons = [t["detail"] for t in tests if t.get("detail")]
    if status == "skipped" and reasons:
        body += f'<br><small title="{escape(reasons[0])}">{escape(reasons[0][:120])}</small>'
    elif status in ("failed", "deviation"):
        output = "\n\n".join(
            f"{t['nodeid']}\n{t['detail']}" for t in tests if t["outcome"] == status
        )
        link = f' <a href="{escape(report)}">full report</a>' if report else ""
        body += f"<details><summary>output</summary><pre>{escape(output)}</pre></details>{link}"
    return f'<td class="{status}" data-target="{escape(target)}">{body}</td>'


def render(merged: dict[str, Any]) -> str:
    targets = list(merged["targets"])
    counts = percentages(merged)
    summary = []
    for target, c in counts.items():
        applicable = c["passed"] + c["failed"] + c["deviation"]
        share = 100 * c["passed"] / applicable if applicable else 0.0
        version = merged["targets"][target].get("version", "")
        detail = ", ".join(f"{c[v]} {v}" for v in VERDICTS if c[v])
        summary.append(
            f"<li><b>{escape(target)}</b> ({escape(version)}): "
            f'<span class="pct">{share:.0f}%</span> of applicable requirements passed; '
            f"{detail}</li>"
        )
    head = "".join(f"<th>{escape(t)}</th>" for t in targets)
    rows: list[str] = []
    by_section: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for req_id, req in sorted(merged["requirements"].items()):
        by_section.setdefault(req["section"], []).append((req_id, req))
    for section, reqs in sorted(by_section.items()):
        rows.append(
            f'<tr><th class="section" colspan="{len(targets) + 2}">{escape(section)}</th></tr>'
        )
        for req_id, req in reqs:
            cells = "".join(
                cell(t, req["results"].get(t, {"status": "untested"}), merged["sources"].get(t, ""))
                for t in targets
            )
            rows.append(
                f'<tr id="{escape(req_id)}"><td><a href="{escape(req["reference"])}">'
                f'{escape(req_id)}</a> <span class="level">{escape(req["level"])}</span></td>'
                f"<td>{escape(req['statement'])}</td>{cells}</tr>"
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Compliance matrix</title>"
        f"<style>{CSS}</style></head><body><h1>Container runtime compliance matrix</h1>"
        f"<ul id='summary'>{''.join(summary)}</ul>{chart(counts)}"
        f"<table class='grid' id='grid'><thead><tr><th>Requirement</th><th>Statement</th>{head}"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></body></html>\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", type=Path, help="compliance.json files")
    parser.add_argument("-o", "--output", type=Path, default=Path("reports/out/compliance.html"))
    args = parser.parse_args(argv)
    documents = []
    for path in args.inputs:
        doc = json.loads(path.read_text())
        report = path.with_name("report.html")
        if report.exists():  # link relative to the matrix page
            doc["_source"] = os.path.relpath(report.resolve(), args.output.resolve().parent)
        documents.append(doc)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(merge(documents)))
    print(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
