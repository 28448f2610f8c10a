"""Contents of /etc/resolv.conf: the DNS flags replace their parts, and without them the file
is the host's with loopback nameservers dropped (test_etc_resolv_fallback.py: none left).

Nothing here resolves a name: the files are read from the host side. Every --dns is a TEST-NET
address, so even a container that did resolve could not reach the host's resolver.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from fixtures.containers import Containers
from fixtures.etcfiles import ResolvConf, ipv4_only, is_loopback, parse_resolv_conf, read_etc
from fixtures.probe import SLEEP
from fixtures.targets.base import ContainerSpec

HOST_RESOLV_CONF = Path("/etc/resolv.conf")
# Docker 20.10 (libnetwork resolvconf.Path): a host whose only nameserver is systemd-resolved's
# stub reads the upstream list from here instead, if it exists.
SYSTEMD_RESOLV_CONF = Path("/run/systemd/resolve/resolv.conf")
SYSTEMD_STUB = "127.0.0.53"


def container_resolv(containers: Containers, spec: ContainerSpec) -> ResolvConf:
    container = containers.start(spec)
    return parse_resolv_conf(read_etc(container.pid, "resolv.conf"))


@pytest.mark.req("ETC-13")
@pytest.mark.needs("etc-files", "dns-flags")
def test_dns_flag_sets_the_nameservers(containers: Containers) -> None:
    servers = ("198.51.100.53", "198.51.100.54")
    found = container_resolv(containers, ContainerSpec(command=SLEEP, dns=servers))
    assert found.nameservers == servers


@pytest.mark.req("ETC-13")
@pytest.mark.needs("etc-files", "dns-flags")
def test_dns_search_flag_sets_the_search_domains(containers: Containers) -> None:
    domains = (f"cts-{secrets.token_hex(3)}.test", "cts-b.test")
    found = container_resolv(containers, ContainerSpec(command=SLEEP, dns_search=domains))
    assert found.search == domains


@pytest.mark.req("ETC-13")
@pytest.mark.needs("etc-files", "dns-flags")
def test_dns_option_flag_sets_the_options(containers: Containers) -> None:
    options = ("ndots:2", "timeout:3")
    found = container_resolv(containers, ContainerSpec(command=SLEEP, dns_options=options))
    assert sorted(found.options) == sorted(options)


@pytest.mark.req("ETC-10")
@pytest.mark.needs("etc-files", "bridge-network")
def test_default_resolv_conf_is_the_hosts_without_loopback_servers(
    containers: Containers,
) -> None:
    host = parse_resolv_conf(HOST_RESOLV_CONF.read_text())
    if host.nameservers == (SYSTEMD_STUB,) and SYSTEMD_RESOLV_CONF.exists():
        host = parse_resolv_conf(SYSTEMD_RESOLV_CONF.read_text())
    expected = ipv4_only(tuple(n for n in host.nameservers if not is_loopback(n)))
    if not expected:
        pytest.skip("the host lists only loopback nameservers: the fallback test covers this")
    found = container_resolv(containers, ContainerSpec(command=SLEEP))
    assert not [n for n in found.nameservers if is_loopback(n)], found
    assert ipv4_only(found.nameservers) == expected
    assert (found.search, sorted(found.options)) == (host.search, sorted(host.options))
