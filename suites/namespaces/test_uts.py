"""UTS namespace: the container has its own; -h and --domainname set its names, and a
hostname set in it later stays there; the host keeps its own names throughout."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from fixtures import host, nsenter
from fixtures.containers import Containers
from fixtures.probe import SLEEP, probe
from fixtures.targets.base import ContainerSpec

# The UTS namespace's NIS domain name, as the reading process's namespace has it.
DOMAINNAME = Path("/proc/sys/kernel/domainname")


@pytest.mark.req("NS-01")
def test_uts_namespace_is_new(containers: Containers) -> None:
    container = containers.start(ContainerSpec(command=SLEEP))
    assert host.ns_inode(container.pid, "uts") != host.ns_inode("self", "uts"), (
        "the container shares the host's UTS namespace"
    )


@pytest.mark.req("NS-UTS-02", "NS-UTS-08")
@pytest.mark.needs("hostname")
def test_hostname_flag_sets_container_hostname_only(containers: Containers) -> None:
    before = host.hostname()
    wanted = f"cts-h{secrets.token_hex(4)}"
    result = containers.run(ContainerSpec(command=probe("hostname"), hostname=wanted))
    assert result.exit_code == 0, result.stderr
    assert result.json()["hostname"] == wanted
    assert host.hostname() == before, "the host's hostname changed"


@pytest.mark.req("NS-UTS-08")
def test_hostname_set_inside_stays_inside(containers: Containers) -> None:
    container = containers.start(ContainerSpec(command=SLEEP))
    if host.ns_inode(container.pid, "uts") == host.ns_inode("self", "uts"):
        # Setting "its" hostname now would rename the host.
        pytest.fail("the container shares the host's UTS namespace")
    before = host.hostname()
    wanted = f"cts-i{secrets.token_hex(4)}"
    # The container may not call sethostname (no CAP_SYS_ADMIN): the host does it in its UTS
    # namespace, which is the same kernel object the container's own call would change.
    nsenter.set_hostname(container.pid, wanted)
    seen = containers.exec(container, probe("hostname"))
    assert seen.exit_code == 0, seen.stderr
    assert seen.json()["hostname"] == wanted
    assert host.hostname() == before, "the host's hostname changed"


@pytest.mark.req("NS-UTS-03")
@pytest.mark.needs("domainname")
def test_domainname_flag_sets_container_domainname_only(containers: Containers) -> None:
    before = DOMAINNAME.read_text()
    wanted = f"cts-d{secrets.token_hex(4)}.test"
    container = containers.start(ContainerSpec(command=SLEEP, domainname=wanted))
    seen = containers.exec(container, probe("hostname"))
    assert seen.exit_code == 0, seen.stderr
    assert seen.json()["domainname"] == wanted, "the container sees another domain name"
    # The host-side witness: the host's own `cat` in the container's UTS namespace.
    assert nsenter.read(container.pid, "uts", str(DOMAINNAME)).strip() == wanted
    assert DOMAINNAME.read_text() == before, "the host's domain name changed"
