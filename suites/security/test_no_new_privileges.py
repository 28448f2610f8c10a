"""no_new_privs: off by default for engines, on when asked (/proc/PID/status, host side)."""

from __future__ import annotations

import pytest

from fixtures import host
from fixtures.containers import Containers
from fixtures.probe import SLEEP
from fixtures.security import DEFAULTS
from fixtures.targets.base import ContainerSpec, Driver


@pytest.mark.req("SEC-16")
def test_no_new_privileges_default(containers: Containers, target: Driver) -> None:
    defaults = DEFAULTS[target.kind]
    container = containers.start(ContainerSpec(command=SLEEP))
    assert int(host.status(container.pid)["NoNewPrivs"]) == defaults.no_new_privs, defaults.source


@pytest.mark.req("SEC-16")
@pytest.mark.needs("security-opts")
def test_no_new_privileges_when_asked(containers: Containers) -> None:
    container = containers.start(ContainerSpec(command=SLEEP, no_new_privileges=True))
    assert int(host.status(container.pid)["NoNewPrivs"]) == 1
