"""Capabilities of the container's root process, read on the host from /proc/PID/status.

Expected sets are data (fixtures.security.DEFAULTS, per kind of target), cut down to this
host's own bounding set: a runtime cannot hand out what the host does not have.
"""

from __future__ import annotations

import pytest

from fixtures import host
from fixtures.containers import Containers
from fixtures.probe import SLEEP
from fixtures.security import (
    DEFAULTS,
    cap_names,
    full_name,
    host_bounding_set,
    in_ranges,
    version_of,
)
from fixtures.targets.base import ContainerSpec, Driver


def _compare(field: str, seen: frozenset[str], wanted: frozenset[str]) -> str:
    return (
        f"{field}: extra {sorted(seen - wanted)}, missing {sorted(wanted - seen)} "
        f"(expected {sorted(wanted)})"
    )


def assert_sets(pid: int, fields: tuple[str, ...], wanted: frozenset[str]) -> None:
    status = host.status(pid)
    problems = [
        _compare(field, cap_names(status[field]), wanted)
        for field in fields
        if cap_names(status[field]) != wanted
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.req("SEC-01")
def test_default_capability_sets(containers: Containers, target: Driver) -> None:
    wanted = DEFAULTS[target.kind].caps & host_bounding_set()
    container = containers.start(ContainerSpec(command=SLEEP))
    assert_sets(container.pid, ("CapBnd", "CapPrm", "CapEff"), wanted)


@pytest.mark.req("SEC-02")
def test_inheritable_and_ambient_sets_are_empty(containers: Containers, target: Driver) -> None:
    defaults = DEFAULTS[target.kind]
    empty = in_ranges(version_of(target), defaults.inheritable_empty)
    container = containers.start(ContainerSpec(command=SLEEP))
    inheritable = frozenset() if empty else defaults.caps & host_bounding_set()
    assert_sets(container.pid, ("CapInh",), inheritable)
    assert_sets(container.pid, ("CapAmb",), frozenset())


@pytest.mark.req("SEC-03")
@pytest.mark.needs("security-opts")
def test_cap_add_and_drop(containers: Containers, target: Driver) -> None:
    # KILL is in every kind's defaults, NET_ADMIN in none: both flags must change the sets.
    spec = ContainerSpec(command=SLEEP, cap_add=("NET_ADMIN",), cap_drop=("KILL",))
    defaults = DEFAULTS[target.kind].caps
    wanted = (defaults - {full_name(c) for c in spec.cap_drop}) | {
        full_name(c) for c in spec.cap_add
    }
    container = containers.start(spec)
    assert_sets(container.pid, ("CapBnd", "CapPrm", "CapEff"), wanted & host_bounding_set())
