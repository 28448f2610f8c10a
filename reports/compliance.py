"""compliance.json: per requirement and target, the verdict and the tests behind it.

Built from plain result records so that it can be produced by the pytest plugin at the end
of a run and merged from several runs (the compliance matrix reads the same shape).
"""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fixtures.requirements import Requirement

# Verdict of a requirement on a target, worst first. A deviation is a failure of a requirement
# weaker than the run's --level: reported, but it does not fail the run.
VERDICTS = ("failed", "deviation", "passed", "skipped", "untested")
PHASE_ORDER = ("failed", "deviation", "skipped", "passed")


@dataclass
class Result:
    """One test's outcome on one target (all phases folded)."""

    nodeid: str
    target: str
    requirements: list[str]
    outcome: str = "passed"  # passed | failed | deviation | skipped
    detail: str = ""
    duration: float = 0.0

    def fold(self, when: str, outcome: str, detail: str, duration: float) -> None:
        """Fold one phase (setup, call, teardown) in. For a test a skip outranks a pass (a
        skipped test still has a passing teardown); for a requirement it is the other way."""
        self.duration += duration
        if PHASE_ORDER.index(outcome) < PHASE_ORDER.index(self.outcome):
            self.outcome = outcome
            self.detail = f"{when}: {detail}" if outcome in ("failed", "deviation") else detail


@dataclass
class Compliance:
    requirements: Mapping[str, Requirement]
    targets: dict[str, str] = field(default_factory=dict)  # name → version
    results: list[Result] = field(default_factory=list)

    def verdict(self, req_id: str, target: str) -> tuple[str, list[Result]]:
        tests = [r for r in self.results if r.target == target and req_id in r.requirements]
        outcomes = {r.outcome for r in tests}
        for verdict in VERDICTS[:4]:
            if verdict in outcomes:
                return verdict, tests
        return "untested", tests

    def to_json(self) -> dict[str, Any]:
        reqs: dict[str, Any] = {}
        summary = {t: dict.fromkeys(VERDICTS, 0) for t in self.targets}
        for req_id, req in sorted(self.requirements.items()):
            per_target = {}
            for target in self.targets:
                verdict, tests = self.verdict(req_id, target)
                summary[target][verdict] += 1
                per_target[target] = {
                    "status": verdict,
                    "tests": [
                        {
                            "nodeid": r.nodeid,
                            "outcome": r.outcome,
                            "detail": r.detail[:2000],
                            "duration": round(r.duration, 3),
                        }
                        for r in tests
                    ],
                }
            reqs[req_id] = {**asdict(req), "results": per_target}
        return {
            "generated": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": {"kernel": platform.release(), "machine": platform.machine()},
            "targets": {name: {"version": v} for name, v in self.targets.items()},
            "summary": summary,
            "requirements": reqs,
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")


def untested_must(requirements: Mapping[str, Requirement], tested: Iterable[str]) -> list[str]:
    """MUST requirements that no test names."""
    seen = set(tested)
    return sorted(r.id for r in requirements.values() if r.level == "MUST" and r.id not in seen)
