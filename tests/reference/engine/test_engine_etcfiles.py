"""/etc/hostname, /etc/hosts and /etc/resolv.conf contents (Docker 20.10's rules)."""

from __future__ import annotations

from pathlib import Path

from reference.engine.etcfiles import (
    EtcSpec,
    filter_resolv_conf,
    hostname_file,
    hosts_file,
    resolv_conf,
    write,
)

HOST = "search corp.example\nnameserver 127.0.0.53\nnameserver 10.255.255.53\noptions ndots:3\n"


def test_hostname_file_holds_only_the_hostname() -> None:
    assert hostname_file(EtcSpec(hostname="web1", domainname="example.test")) == "web1\n"


def test_hosts_default_block_extra_hosts_then_own_address() -> None:
    spec = EtcSpec(
        hostname="web1",
        domainname="example.test",
        address="172.17.0.4",
        extra_hosts=[("db.local", "198.51.100.7")],
    )
    assert hosts_file(spec).splitlines() == [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "ff00::0\tip6-mcastprefix",
        "ff02::1\tip6-allnodes",
        "ff02::2\tip6-allrouters",
        "198.51.100.7\tdb.local",
        "172.17.0.4\tweb1.example.test web1",
    ]


def test_hosts_without_an_address_has_no_own_line() -> None:
    assert "web1" not in hosts_file(EtcSpec(hostname="web1"))


def test_host_network_copies_the_hosts_file() -> None:
    host = "127.0.0.1 localhost\n192.0.2.2 vm\n"
    spec = EtcSpec(hostname="vm", host_network=True, extra_hosts=[("x", "198.51.100.1")])
    assert hosts_file(spec, host) == host + "198.51.100.1\tx\n"


def test_loopback_nameservers_are_filtered() -> None:
    assert resolv_conf(EtcSpec(hostname="h"), HOST) == (
        "search corp.example\nnameserver 10.255.255.53\noptions ndots:3\n"
    )


def test_fallback_when_only_loopback_servers_remain() -> None:
    text = filter_resolv_conf("nameserver 127.0.0.1\nnameserver ::1\noptions ndots:2\n")
    assert "nameserver 127.0.0.1" not in text
    assert [line for line in text.splitlines() if line.startswith("nameserver")] == [
        "nameserver 8.8.8.8",
        "nameserver 8.8.4.4",
        "nameserver 2001:4860:4860::8888",
        "nameserver 2001:4860:4860::8844",
    ]
    assert "options ndots:2" in text


def test_host_network_keeps_the_file_as_is() -> None:
    assert resolv_conf(EtcSpec(hostname="h", host_network=True), HOST) == HOST


def test_flags_replace_their_parts_only() -> None:
    spec = EtcSpec(hostname="h", dns=["198.51.100.53"], dns_options=["ndots:2"])
    assert resolv_conf(spec, HOST) == (
        "search corp.example\nnameserver 198.51.100.53\noptions ndots:2\n"
    )
    spec = EtcSpec(hostname="h", dns_search=["a.test", "b.test"])
    text = resolv_conf(spec, HOST)
    assert text.startswith("search a.test b.test\n")
    # Docker 20.10 takes the host's servers unfiltered when only --dns-search is given.
    assert "nameserver 127.0.0.53" in text


def test_daemon_dns_applies_when_the_container_has_none() -> None:
    spec = EtcSpec(hostname="h", daemon_dns=["198.51.100.1"])
    assert "nameserver 198.51.100.1\n" in resolv_conf(spec, HOST)
    spec = EtcSpec(hostname="h", dns=["198.51.100.2"], daemon_dns=["198.51.100.1"])
    assert "198.51.100.1" not in resolv_conf(spec, HOST)


def test_write_makes_the_three_files(tmp_path: Path) -> None:
    paths = write(tmp_path, EtcSpec(hostname="abc"))
    assert sorted(paths) == ["hostname", "hosts", "resolv.conf"]
    assert (tmp_path / "hostname").read_text() == "abc\n"
    assert oct((tmp_path / "hosts").stat().st_mode & 0o777) == "0o644"
