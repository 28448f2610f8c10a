"""Published ports (-p HOST:CTR) by the kernel: DNAT to the container, no userland proxy.

Per binding, as Docker 20.10 writes them (catalogue NET-29) but in refd's chains:
    nat REFD            [-d hip/32] ! -i br -p tcp -m tcp --dport HP -j DNAT --to-destination ip:CP
    filter REFD-FORWARD -d ip/32 ! -i br -o br -p tcp -m tcp --dport CP -j ACCEPT

The host's loopback (127.0.0.1:HP from refd's namespace) is reached the way Docker's
--userland-proxy=false does it (NET-32): the nat OUTPUT jump has no loopback exclusion, the
bridge gets route_localnet=1 (so a DNATed packet with a 127.x source may leave through it) and
`-s 127.0.0.0/8 -o br -j MASQUERADE` gives it the bridge's address as its source, so the
container can answer. That is set once per bridge and kept until the network goes.

Each host port is also held by a socket bound (never listening) in refd's namespace, as
Docker's proxy-less "dummy proxy" does: nothing else takes the port, and an ephemeral port is
one the kernel says is free.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv4Interface

from reference.errors import ConfigError, ConflictError, RefError
from reference.network.firewall import FORWARD, NAT, POSTROUTING, Firewall, Rule, rule
from reference.network.model import PortBinding

EPHEMERAL = range(49153, 61000)  # Docker's (and the kernel's default) dynamic port range
PROTOCOLS = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}

Key = tuple[str, str, int]  # (proto, host ip or "", host port)
# Binds (proto, host ip, port) in refd's namespace; the held socket. Raises OSError.
Reserver = Callable[[str, str, int], socket.socket | None]


def bind_port(proto: str, host_ip: str, port: int) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, PROTOCOLS[proto])
    try:
        sock.bind((host_ip or "0.0.0.0", port))
    except OSError:
        sock.close()
        raise
    return sock


def binding_rules(bridge: str, container_ip: str, binding: PortBinding) -> list[Rule]:
    proto, host, br = binding.proto, _host_ip(binding.host_ip), bridge
    dest = f"-d {host}/32 " if host else ""
    to = f"{container_ip}:{binding.container_port}"
    match = f"-p {proto} -m {proto} --dport"
    return [
        rule(
            "nat", NAT, f"{dest}! -i {br} {match} {binding.host_port} -j DNAT --to-destination {to}"
        ),
        rule(
            "filter",
            FORWARD,
            f"-d {container_ip}/32 ! -i {br} -o {br} {match} {binding.container_port} -j ACCEPT",
        ),
    ]


def loopback_rule(bridge: str) -> Rule:
    return rule("nat", POSTROUTING, f"-s 127.0.0.0/8 -o {bridge} -j MASQUERADE")


def _host_ip(text: str) -> str:
    """ "" for every address (also for 0.0.0.0)."""
    if not text or text == "0.0.0.0":
        return ""
    try:
        return str(IPv4Address(text))
    except ValueError:
        raise ConfigError(f"invalid host IP {text!r} for a published port", obj=text) from None


class PortMapper:
    def __init__(self, firewall: Firewall, reserve: Reserver | None = None) -> None:
        self.firewall = firewall
        self._reserve = reserve or bind_port
        self._lock = threading.Lock()
        self._held: dict[Key, socket.socket | None] = {}
        self._next = EPHEMERAL.start

    def publish(
        self,
        bridge: str,
        container_ip: str,
        bindings: list[PortBinding],
        default_host_ip: str = "",
    ) -> list[Rule]:
        """Publish `bindings` of the container at `container_ip` on `bridge`. A binding with
        host_port 0 gets a free ephemeral port (written into it); one without host_ip gets
        `default_host_ip` (the network's host_binding_ipv4). Returns the rules added, for
        unpublish. All or nothing: on failure what was done here is undone."""
        ip = str(IPv4Interface(container_ip).ip)
        for binding in bindings:
            if binding.proto not in PROTOCOLS:
                raise ConfigError(f"unsupported protocol {binding.proto!r}", obj=str(binding))
            if not binding.host_ip and default_host_ip:
                binding.host_ip = _host_ip(default_host_ip)
        held: list[Key] = []
        rules: list[Rule] = []
        ephemeral = [b for b in bindings if not b.host_port]
        try:
            for binding in bindings:
                held.append(self._hold(binding))
            self._loopback(bridge)
            for binding in bindings:
                rules += self.firewall.add_all(binding_rules(bridge, ip, binding))
        except BaseException:
            for added in reversed(rules):
                self.firewall.delete(added)
            self._release(held)
            for binding in ephemeral:
                binding.host_port = 0
            raise
        return rules

    def unpublish(self, bindings: Iterable[PortBinding], rules: Iterable[Rule]) -> None:
        """Remove `rules` (what publish returned) and free the bindings' host ports."""
        for added in rules:
            self.firewall.delete(added)
        self._release([(b.proto, _host_ip(b.host_ip), b.host_port) for b in bindings])

    def restore(self, bridge: str, bindings: list[PortBinding], rules: Iterable[Rule]) -> None:
        """After a refd restart: the rules again (idempotent) and the ports held again where
        still free (a port taken meanwhile keeps its rules: the DNAT still wins)."""
        self._loopback(bridge)
        for added in rules:
            self.firewall.add(added)
        for binding in bindings:
            with contextlib.suppress(RefError):
                self._hold(binding)

    def release_bridge(self, bridge: str) -> None:
        """The network goes: its loopback masquerade rule too (route_localnet goes with the
        bridge device)."""
        self.firewall.delete(loopback_rule(bridge))

    def close(self) -> None:
        with self._lock:
            for sock in self._held.values():
                if sock is not None:
                    sock.close()
            self._held.clear()

    # -- internals ---------------------------------------------------------------------
    def _loopback(self, bridge: str) -> None:
        if not self.firewall.enabled:
            return
        self.firewall.sysctl(f"net/ipv4/conf/{bridge}/route_localnet", "1")
        self.firewall.add(loopback_rule(bridge))

    def _taken(self, proto: str, host_ip: str, port: int) -> bool:
        return any(
            p == proto and n == port and (not h or not host_ip or h == host_ip)
            for p, h, n in self._held
        )

    def _hold(self, binding: PortBinding) -> Key:
        """Claim the binding's host port (choose one if 0); its key."""
        host_ip = _host_ip(binding.host_ip)
        with self._lock:
            if binding.host_port:
                if self._taken(binding.proto, host_ip, binding.host_port):
                    raise ConflictError(
                        f"Bind for {host_ip or '0.0.0.0'}:{binding.host_port} failed: "
                        "port is already allocated"
                    )
                key = (binding.proto, host_ip, binding.host_port)
                self._held[key] = self._bind(*key)
                return key
            for _ in EPHEMERAL:
                port = self._next
                self._next = port + 1 if port + 1 < EPHEMERAL.stop else EPHEMERAL.start
                if self._taken(binding.proto, host_ip, port):
                    continue
                try:
                    self._held[(binding.proto, host_ip, port)] = self._reserve(
                        binding.proto, host_ip, port
                    )
                except OSError:
                    continue
                binding.host_port = port
                return (binding.proto, host_ip, port)
        raise ConflictError(
            f"no free port in {EPHEMERAL.start}-{EPHEMERAL.stop - 1} for a published port",
            obj=f"{binding.proto}/{binding.container_port}",
        )

    def _bind(self, proto: str, host_ip: str, port: int) -> socket.socket | None:
        try:
            return self._reserve(proto, host_ip, port)
        except OSError as exc:
            where = f"{proto}4 {host_ip or '0.0.0.0'}:{port}"
            if exc.errno == errno.EADDRINUSE:
                raise ConflictError(f"listen {where}: bind: address already in use") from None
            raise ConfigError(f"listen {where}: bind: {exc.strerror}", obj=where) from None

    def _release(self, keys: Iterable[Key]) -> None:
        with self._lock:
            for key in keys:
                sock = self._held.pop(key, None)
                if sock is not None:
                    sock.close()
