"""The requirement registry and the suite agree: every test names known requirements and
every MUST requirement has a test."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fixtures.errors import RequirementError
from fixtures.requirements import LEVELS, load

REPO = Path(__file__).resolve().parents[2]


def collect(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_registry_loads_and_is_well_formed() -> None:
    registry = load()
    assert registry, "the registry is empty"
    assert all(r.level in LEVELS for r in registry.values())


def test_every_must_requirement_has_a_test(tmp_path: Path) -> None:
    out = tmp_path / "map.json"
    done = collect("suites", "--target", "docker", f"--requirements-map={out}")
    assert done.returncode == 0, done.stdout + done.stderr
    named = {req for reqs in json.loads(out.read_text()).values() for req in reqs}
    untested = sorted(r.id for r in load().values() if r.level == "MUST" and r.id not in named)
    assert not untested, f"MUST requirements without a test: {untested}"


def test_unknown_requirement_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "test_bad.py").write_text(
        textwrap.dedent("""
        import pytest

        @pytest.mark.req("NS-99")
        def test_bad(target):
            pass

        def test_unnamed(target):
            pass
    """)
    )
    done = collect("-p", "fixtures.plugin", "--target", "docker", str(tmp_path), cwd=tmp_path)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert "unknown requirement 'NS-99'" in done.stderr
    assert "test_unnamed[docker]: names no requirement" in done.stderr


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('id = "bad id"', "is not of the form"),
        ('id = "NS-01"\nlevel = "MUSTNT"', "level 'MUSTNT'"),
        ('id = "NS-01"\nsection = "nowhere"', "section 'nowhere'"),
        ('id = "NS-01"\nreference = "http://x"', "https URL"),
    ],
)
def test_malformed_registry_rows_are_rejected(tmp_path: Path, row: str, message: str) -> None:
    fields = {
        "id": '"NS-01"',
        "section": '"namespaces"',
        "level": '"MUST"',
        "statement": '"s"',
        "reference": '"https://example.org"',
    }
    for line in row.splitlines():
        key, _, value = line.partition(" = ")
        fields[key] = value
    path = tmp_path / "r.toml"
    path.write_text("[[requirement]]\n" + "\n".join(f"{k} = {v}" for k, v in fields.items()))
    with pytest.raises(RequirementError, match=message):
        load(path)
