"""The seccomp filter a container runs under by default (/proc/PID/status, host side)."""

from __future__ import annotations

import pytest

from fixtures import host
from fixtures.containers import Containers
from fixtures.probe import SLEEP
from fixtures.security import DEFAULTS
from fixtures.targets.base import ContainerSpec, Driver

MODES = {0: "disabled", 1: "strict", 2: "filter"}


@pytest.mark.req("SEC-10")
def test_default_seccomp_mode(containers: Containers, target: Driver) -> None:
    defaults = DEFAULTS[target.kind]
    container = containers.start(ContainerSpec(command=SLEEP))
    status = host.status(container.pid)
    mode = int(status["Seccomp"])
    assert mode == defaults.seccomp, (
        f"seccomp mode {MODES.get(mode, mode)}, expected {MODES[defaults.seccomp]} "
        f"({defaults.source})"
    )
    if defaults.seccomp == 2 and "Seccomp_filters" in status:  # the field is from Linux 5.9
        assert int(status["Seccomp_filters"]) >= 1
