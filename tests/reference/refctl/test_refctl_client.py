"""refctl's client encodes queries and bodies as the standard library would (it avoids
urllib.parse and json for their import cost, see reference/cli/ctl/client.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from reference.cli.ctl.client import loads, query_string
from reference.oci import fastjson

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "query",
    [
        {"name": "cts-1", "all": True, "limit": 0},
        {"filters": json.dumps({"label": {"a=b c": True}}), "stream": False},
        {"t": ["x:1", "y/z:2"], "skip": None, "q": "é ü ~._-+&=%"},
    ],
)
def test_query_string_is_urlencode(query: dict[str, object]) -> None:
    pairs = []
    for key, value in query.items():
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                pairs.append((key, ("1" if item else "0") if isinstance(item, bool) else str(item)))
    assert query_string(query) == "?" + urllib.parse.urlencode(pairs)
    assert query_string({}) == query_string({"x": None}) == ""


def test_json_round_trips_as_the_json_module() -> None:
    body = {"Image": "cts", "Cmd": ["sh", "-c", "echo é"], "HostConfig": {"Memory": 1 << 30},
            "Labels": {}, "Tty": False, "Env": None, "Cpus": 1.5}  # fmt: skip
    assert fastjson.dumps(body) == json.dumps(body, separators=(",", ":"))
    assert loads(json.dumps(body).encode()) == body


@pytest.mark.parametrize("text", ['{"a": 1, ', "[1, 2", "", '{"a" 1}', "[1] x"])
def test_malformed_json_is_a_value_error_without_json_imported(text: str) -> None:
    # _json raises its errors through json.decoder, which a refctl or refrun process has not
    # imported (this test process has): so in a fresh interpreter.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from reference.oci import fastjson\n"
        "try:\n    fastjson.loads(sys.argv[2])\n"
        "except ValueError as e:\n    print('ValueError', e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-IS", "-c", code, str(REPO), text], capture_output=True, text=True
    )
    assert done.stdout.startswith("ValueError"), done.stderr
