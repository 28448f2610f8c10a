"""Fixtures of the bridge-networking tests (fixtures.netlab does the work; this only scopes it).

engine_ns       the namespace where the target's bridges, routes and firewall live
wan_host        a fake WAN host linked to it (TEST-NET addresses, no route back)
lab_factory     the target's engine reconfigured: a private daemon in a lab netns
                (fixtures.daemon_config), its containers removed and proven gone
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager

import pytest

from fixtures.daemon_config import Lab, LabFactory, lab_containers, private_daemon
from fixtures.netlab import Netns, Wan, engine_netns, wan
from fixtures.targets.base import Driver


@pytest.fixture
def engine_ns(target: Driver) -> Netns:
    return engine_netns(target)


@pytest.fixture
def wan_host(engine_ns: Netns) -> Iterator[Wan]:
    with wan(engine_ns) as made:
        yield made


@contextmanager
def _lab(
    target: Driver, config: Mapping[str, object], key: str, netns: Netns | None
) -> Iterator[Lab]:
    with (
        private_daemon(target, config, netns) as lab,
        lab_containers(lab, key) as containers,
    ):
        yield lab, containers


@pytest.fixture
def lab_factory(target: Driver, request: pytest.FixtureRequest) -> Iterator[LabFactory]:
    """lab_factory(config, netns=None) -> (LabHost, Containers): a private daemon of the
    target's engine with `config`; everything is stopped and removed after the test."""
    with ExitStack() as stack:

        def make(config: Mapping[str, object], netns: Netns | None = None) -> Lab:
            manager: AbstractContextManager[Lab] = _lab(target, config, request.node.nodeid, netns)
            return stack.enter_context(manager)

        yield make
