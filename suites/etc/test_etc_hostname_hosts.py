"""Contents of /etc/hostname and /etc/hosts, with and without -h and --add-host.

The files are read through /proc/<pid>/root (what the container sees); the hostname they must
agree with is the one in the container's UTS namespace, and the address its own entry must
carry is read from its network namespace (fib_trie), both from the host side.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from fixtures.containers import Containers
from fixtures.etcfiles import local_ipv4, parse_hosts, read_etc, uts_hostname
from fixtures.probe import SLEEP
from fixtures.targets.base import ContainerSpec

# Entries every engine's default block may carry (Docker 20.10's block; podman writes only
# the first); anything else in the host's /etc/hosts must not leak into a private network's.
DEFAULT_HOSTS_ENTRIES = {
    ("127.0.0.1", "localhost"),
    ("::1", "localhost"),
    ("::1", "ip6-localhost"),
    ("::1", "ip6-loopback"),
    ("fe00::0", "ip6-localnet"),
    ("ff00::0", "ip6-mcastprefix"),
    ("ff02::1", "ip6-allnodes"),
    ("ff02::2", "ip6-allrouters"),
}


def pairs(text: str) -> set[tuple[str, str]]:
    return {(address, name) for address, names in parse_hosts(text) for name in names}


def hostname_file(pid: int) -> str:
    # Docker ends the line with a newline, podman does not: both mean the same name.
    return read_etc(pid, "hostname").removesuffix("\n")


@pytest.mark.req("ETC-02")
@pytest.mark.needs("etc-files")
def test_default_hostname_file_matches_the_uts_hostname(containers: Containers) -> None:
    container = containers.start(ContainerSpec(command=SLEEP))
    kernel = uts_hostname(container.pid)
    assert kernel, "the container's UTS hostname is empty"
    assert hostname_file(container.pid) == kernel


@pytest.mark.req("ETC-02")
@pytest.mark.needs("etc-files", "hostname")
def test_hostname_flag_is_written_to_the_hostname_file(containers: Containers) -> None:
    wanted = f"cts-h{secrets.token_hex(4)}"
    container = containers.start(ContainerSpec(command=SLEEP, hostname=wanted))
    assert hostname_file(container.pid) == wanted
    assert uts_hostname(container.pid) == wanted


@pytest.mark.req("ETC-03", "ETC-04")
@pytest.mark.needs("etc-files", "hostname", "bridge-network")
def test_hosts_maps_localhost_and_the_containers_own_address(containers: Containers) -> None:
    wanted = f"cts-h{secrets.token_hex(4)}"
    container = containers.start(ContainerSpec(command=SLEEP, hostname=wanted))
    entries = pairs(read_etc(container.pid, "hosts"))
    assert ("127.0.0.1", "localhost") in entries, entries
    addresses = local_ipv4(container.pid)
    assert addresses, "the container has no non-loopback IPv4 address on the default network"
    for address in addresses:
        assert (address, wanted) in entries, f"no entry {address} {wanted} in {sorted(entries)}"


@pytest.mark.req("ETC-06")
@pytest.mark.needs("etc-files", "dns-flags")
def test_add_host_entries_are_added(containers: Containers) -> None:
    extra = (("cts-db.test", "198.51.100.7"), ("cts-cache.test", "198.51.100.8"))
    container = containers.start(ContainerSpec(command=SLEEP, add_hosts=extra))
    entries = pairs(read_etc(container.pid, "hosts"))
    for name, address in extra:
        assert (address, name) in entries, f"--add-host {name}:{address} missing: {entries}"


@pytest.mark.req("ETC-07")
@pytest.mark.needs("etc-files", "bridge-network")
def test_hosts_does_not_inherit_the_hosts_own_entries(containers: Containers) -> None:
    host_only = pairs(Path("/etc/hosts").read_text()) - DEFAULT_HOSTS_ENTRIES
    if not host_only:
        pytest.skip("the host's /etc/hosts has only default entries: inheritance is invisible")
    container = containers.start(ContainerSpec(command=SLEEP))
    leaked = host_only & pairs(read_etc(container.pid, "hosts"))
    assert not leaked, f"the host's own /etc/hosts entries leaked into the container: {leaked}"
