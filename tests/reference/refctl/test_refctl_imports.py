"""Start-up budget of refctl, as the modules it loads (not as timings, which depend on the
machine): every `docker run` an engine user types is a refctl call, and each of these stdlib
modules costs milliseconds to import (together ~30 ms of a ~55 ms `refctl run -d`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

# Heavy for a CLI start: what json, socket, urllib.parse, typing, shlex and ipaddress pull in.
HEAVY = frozenset(
    {"typing", "re", "enum", "json", "socket", "selectors", "urllib.parse", "ipaddress",
     "shlex", "collections", "functools", "contextlib", "dataclasses", "subprocess"}
)  # fmt: skip


def test_container_verbs_import_no_heavy_module() -> None:
    # The path of run, create, start, ps, logs, stop, rm, wait, ...: refctl's main, the
    # client, and the containers verbs' module with what it imports.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from reference.cli.refctl import main\n"
        "import reference.cli.ctl.client, reference.cli.ctl.common, reference.cli.ctl.flags\n"
        "import reference.cli.ctl.containers\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-IS", "-c", code, str(REPO)], capture_output=True, text=True, check=True
    )
    assert set(out.stdout.split()) & HEAVY == set()
