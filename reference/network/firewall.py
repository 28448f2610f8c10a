"""refd's iptables rules for bridge networks, in chains of its own.

refd must work in a namespace where Docker already runs (Docker 20.10 sets the filter FORWARD
policy to DROP and owns the DOCKER-* chains), so it never edits Docker's chains: it jumps to
its own from the built-in ones and keeps every rule of its networks there.

    filter FORWARD        -j REFD-FORWARD                      (inserted first, once)
                          -i br -o br -j DROP                  (icc=false; Docker 20.10's text)
    filter REFD-FORWARD   -j REFD-ISOLATION-STAGE-1            (always first)
                          -o br -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
                          -i br ! -o br -j ACCEPT
                          -i br -o br -j ACCEPT                (icc=true)
                          -d ctr/32 ! -i br -o br -p tcp -m tcp --dport P -j ACCEPT  (portmap)
    filter REFD-ISOLATION-STAGE-1  -i br ! -o br -j REFD-ISOLATION-STAGE-2
                          ! -s subnet -o br -j DROP, ! -d subnet -i br -j DROP  (internal)
    filter REFD-ISOLATION-STAGE-2  -o br -j DROP
    nat PREROUTING        -m addrtype --dst-type LOCAL -j REFD
    nat OUTPUT            -m addrtype --dst-type LOCAL -j REFD (loopback too: route_localnet)
    nat POSTROUTING       -j REFD-POSTROUTING
    nat REFD-POSTROUTING  -s subnet ! -o br -j MASQUERADE      (ip-masq)
                          -s 127.0.0.0/8 -o br -j MASQUERADE   (portmap: loopback publishing)
    nat REFD              [-d ip/32] ! -i br -p tcp -m tcp --dport HP -j DNAT ...  (portmap)
    raw PREROUTING        -j REFD-PREROUTING
    raw REFD-PREROUTING   -d 127.0.0.0/8 -i br -j DROP          (route_localnet's guard)

The ICC DROP is the one rule in a built-in chain: Docker 20.10 writes exactly
`-A FORWARD -i br -o br -j DROP` (catalogue NET-28) and the suite reads that text.

Rules are written as `iptables-save` prints them, so fixtures/iptables.py can walk them and
`-C` finds them again. Every add is checked first (-C), so each call is idempotent and a refd
restart can simply set everything up again.
"""

from __future__ import annotations

import itertools
import subprocess
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reference.errors import KernelError, RefError, UnsupportedError

FORWARD = "REFD-FORWARD"
STAGE1 = "REFD-ISOLATION-STAGE-1"
STAGE2 = "REFD-ISOLATION-STAGE-2"
NAT = "REFD"
POSTROUTING = "REFD-POSTROUTING"
RAW = "REFD-PREROUTING"
CHAINS = (("filter", FORWARD), ("filter", STAGE1), ("filter", STAGE2), ("nat", NAT),
          ("nat", POSTROUTING), ("raw", RAW))  # fmt: skip

# Runs an argv (iptables -w ...): (exit code, its stdout if it succeeded, else its stderr).
Runner = Callable[[Sequence[str]], tuple[int, str]]
# Writes a value to /proc/sys/<key> ("net/ipv4/ip_forward").
SysctlWriter = Callable[[str, str], None]


@dataclass(frozen=True)
class Rule:
    """One rule: `-A chain *spec` in `table`. `position` set: inserted there (-I) instead."""

    table: str
    chain: str
    spec: tuple[str, ...]
    position: int | None = None

    def text(self) -> str:
        return " ".join(("-A", self.chain, *self.spec))

    def to_doc(self) -> list[str]:
        """JSON-able form for driver_state (the position is only needed to add it)."""
        return [self.table, self.chain, *self.spec]

    @classmethod
    def from_doc(cls, doc: Sequence[str]) -> Rule:
        return cls(doc[0], doc[1], tuple(doc[2:]))


def run_iptables(argv: Sequence[str]) -> tuple[int, str]:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise UnsupportedError("iptables is not installed", obj=argv[0]) from None
    return done.returncode, (done.stdout if done.returncode == 0 else done.stderr).strip()


def write_sysctl(key: str, value: str) -> None:
    path = Path("/proc/sys") / key
    try:
        path.write_text(value)
    except OSError as exc:
        raise KernelError(f"write {value}", exc.errno or 0, obj=str(path)) from None


def rule(table: str, chain: str, text: str, position: int | None = None) -> Rule:
    """A rule from its text as iptables-save prints it after `-A CHAIN` (names in it have
    no spaces: bridge names are checked)."""
    return Rule(table, chain, tuple(text.split()), position)


def base_rules() -> list[Rule]:
    """The jumps from the built-in chains into refd's, and the isolation jump."""
    local = "-m addrtype --dst-type LOCAL"
    return [
        rule("filter", "FORWARD", f"-j {FORWARD}", position=1),
        rule("filter", FORWARD, f"-j {STAGE1}", position=1),
        rule("nat", "PREROUTING", f"{local} -j {NAT}"),
        rule("nat", "OUTPUT", f"{local} -j {NAT}"),
        rule("nat", "POSTROUTING", f"-j {POSTROUTING}"),
        rule("raw", "PREROUTING", f"-j {RAW}"),
    ]


def network_rules(
    bridge: str, subnet: str, icc: bool = True, masq: bool = True, internal: bool = False
) -> list[Rule]:
    """A bridge network's rules, in the order they are added."""
    br = bridge
    # Loopback publishing sets route_localnet on the bridge, which would let a container reach
    # the host's 127.0.0.1 services by routing 127.x to its gateway: nothing legitimate
    # arrives from a bridge addressed to 127/8 (replies to DNATed loopback traffic carry the
    # gateway address until conntrack rewrites them, after the raw table).
    rules: list[Rule] = [rule("raw", RAW, f"-d 127.0.0.0/8 -i {br} -j DROP")]
    if internal:
        # Nothing enters or leaves the subnet through the bridge (Docker's internal rules).
        rules += [
            rule("filter", STAGE1, f"! -s {subnet} -o {br} -j DROP"),
            rule("filter", STAGE1, f"! -d {subnet} -i {br} -j DROP"),
        ]
    else:
        if masq:
            rules.append(rule("nat", POSTROUTING, f"-s {subnet} ! -o {br} -j MASQUERADE"))
        rules += [
            # Traffic from this bridge to another refd bridge goes to stage 2, where every
            # refd bridge drops what is headed for it.
            rule("filter", STAGE1, f"-i {br} ! -o {br} -j {STAGE2}"),
            rule("filter", STAGE2, f"-o {br} -j DROP"),
            rule(
                "filter", FORWARD, f"-o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
            ),
            rule("filter", FORWARD, f"-i {br} ! -o {br} -j ACCEPT"),
        ]
    if icc:
        rules.append(rule("filter", FORWARD, f"-i {br} -o {br} -j ACCEPT"))
    else:
        rules.append(rule("filter", "FORWARD", f"-i {br} -o {br} -j DROP", position=1))
    return rules


class Firewall:
    """iptables for bridge networks. `enabled` is the daemon's --iptables: when false no rule
    is ever written. `ip_forward` (--ip-forward) turns on IPv4 forwarding at ensure_base(),
    whatever `enabled` says, as dockerd does (forwarding is not a firewall rule)."""

    def __init__(
        self,
        enabled: bool,
        ip_forward: bool = True,
        runner: Runner | None = None,
        sysctl: SysctlWriter | None = None,
    ) -> None:
        self.enabled = enabled
        self.ip_forward = ip_forward
        self._run = runner or run_iptables
        self._sysctl = sysctl or write_sysctl
        # check-then-add must not interleave between refd's threads
        self._lock = threading.RLock()
        self._based = False

    # -- primitives --------------------------------------------------------------------
    def iptables(self, table: str, *args: str) -> tuple[int, str]:
        return self._run(["iptables", "-w", "-t", table, *args])

    def _must(self, rule: Rule, action: str, *args: str) -> None:
        code, out = self.iptables(rule.table, action, *args)
        if code != 0:
            raise RefError(f"iptables -t {rule.table} {action} failed: {out}", obj=rule.text())

    def exists(self, rule: Rule) -> bool:
        return self.iptables(rule.table, "-C", rule.chain, *rule.spec)[0] == 0

    def add(self, rule: Rule) -> bool:
        """Add `rule` unless it is there; whether it was added. No-op when disabled."""
        if not self.enabled:
            return False
        with self._lock:
            if self.exists(rule):
                return False
            if rule.position is not None:
                self._must(rule, "-I", rule.chain, str(rule.position), *rule.spec)
            else:
                self._must(rule, "-A", rule.chain, *rule.spec)
            return True

    def delete(self, rule: Rule) -> None:
        """Remove `rule` (every copy of it) if present."""
        if not self.enabled:
            return
        with self._lock:
            while self.exists(rule):
                self._must(rule, "-D", rule.chain, *rule.spec)

    def add_all(self, rules: Iterable[Rule]) -> list[Rule]:
        """Add each rule; on failure the ones added here are removed and the error raised.
        Returns the rules added here."""
        added: list[Rule] = []
        try:
            for one in rules:
                if self.add(one):
                    added.append(one)
        except BaseException:
            for one in reversed(added):
                self.delete(one)
            raise
        return added

    def sysctl(self, key: str, value: str) -> None:
        self._sysctl(key, value)

    def _ensure_chain(self, table: str, chain: str) -> None:
        if self.iptables(table, "-S", chain)[0] != 0:
            code, out = self.iptables(table, "-N", chain)
            if code != 0 and "exists" not in out:
                raise RefError(f"iptables -t {table} -N failed: {out}", obj=chain)

    # -- refd's chains -----------------------------------------------------------------
    def ensure_base(self) -> None:
        """IPv4 forwarding, refd's chains and the jumps to them. Idempotent."""
        with self._lock:
            if self.ip_forward:
                self.sysctl("net/ipv4/ip_forward", "1")
            if not self.enabled:
                self._based = True
                return
            for table, chain in CHAINS:
                self._ensure_chain(table, chain)
            self.add_all(base_rules())
            self._based = True

    def remove_base(self) -> None:
        """Remove the jumps and refd's chains if no rule of a network is left in them (else
        leave everything: empty chains cost nothing)."""
        if not self.enabled:
            return
        with self._lock:
            inner = {r.text() for r in base_rules() if r.chain in (c for _, c in CHAINS)}
            for table, chain in CHAINS:
                code, out = self.iptables(table, "-S", chain)
                lines = [ln for ln in out.splitlines() if ln.startswith("-A ")]
                if code == 0 and any(ln not in inner for ln in lines):
                    return
            for one in reversed(base_rules()):
                self.delete(one)
            for table, chain in reversed(CHAINS):
                self.iptables(table, "-X", chain)
            self._based = False

    # -- networks ----------------------------------------------------------------------
    def setup_network(
        self, bridge: str, subnet: str, icc: bool = True, masq: bool = True, internal: bool = False
    ) -> None:
        """The network's rules (idempotent). Undone if one fails."""
        if not self._based:
            self.ensure_base()
        if not self.enabled:
            return
        if not icc:
            # Bridged frames only reach iptables with br_netfilter on (Docker 20.10 sets it for
            # icc=false, catalogue NET-12); the sysctl is per namespace.
            self.sysctl("net/bridge/bridge-nf-call-iptables", "1")
        self.add_all(network_rules(bridge, subnet, icc, masq, internal))

    def teardown_network(self, bridge: str, subnet: str) -> None:
        """Remove every rule setup_network may have made for this bridge, whatever options
        it had (so a changed option never leaves a rule behind)."""
        if not self.enabled:
            return
        seen: set[tuple[str, str, tuple[str, ...]]] = set()
        for icc, masq, internal in itertools.product((True, False), repeat=3):
            for one in network_rules(bridge, subnet, icc, masq, internal):
                key = (one.table, one.chain, one.spec)
                if key not in seen:
                    seen.add(key)
                    self.delete(one)
