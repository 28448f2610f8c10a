"""An in-memory iptables for the firewall and port-mapper tests: it records every argv and
keeps the chains, so a test can read the result back as `iptables-save` lines and walk them
with fixtures.iptables like the suite does."""

from __future__ import annotations

from collections.abc import Sequence

BUILTIN = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "raw": ("PREROUTING", "OUTPUT"),
}


class FakeIptables:
    def __init__(self, policy: str = "ACCEPT") -> None:
        self.calls: list[list[str]] = []
        self.chains: dict[str, dict[str, list[tuple[str, ...]]]] = {
            table: {chain: [] for chain in chains} for table, chains in BUILTIN.items()
        }
        self.policy = policy
        self.fail_on: str | None = None  # a substring of a rule whose -A/-I fails
        self.sysctls: dict[str, str] = {}

    def sysctl(self, key: str, value: str) -> None:
        self.sysctls[key] = value

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        argv = list(argv)
        self.calls.append(argv)
        assert argv[:4] == ["iptables", "-w", "-t", argv[3]], argv
        table, action, chain, rest = argv[3], argv[4], argv[5], tuple(argv[6:])
        chains = self.chains[table]
        if action == "-N":
            if chain in chains:
                return 1, "iptables: Chain already exists."
            chains[chain] = []
            return 0, ""
        if chain not in chains:
            return 1, f"iptables: No chain/target/match by that name: {chain}"
        rules = chains[chain]
        if action == "-S":
            return 0, "\n".join([f"-N {chain}", *(" ".join(("-A", chain, *r)) for r in rules)])
        if action == "-X":
            if rules:
                return 1, "iptables: Directory not empty."
            del chains[chain]
            return 0, ""
        if action in ("-A", "-I"):
            spec = rest[1:] if action == "-I" else rest
            target = spec[spec.index("-j") + 1]
            if target not in chains and target.startswith("REFD"):
                return 1, f"iptables: No chain/target/match by that name: {target}"
            if self.fail_on and self.fail_on in " ".join(spec):
                return 1, "iptables: injected failure"
            if action == "-I":
                rules.insert(int(rest[0]) - 1, spec)
            else:
                rules.append(spec)
            return 0, ""
        if action == "-C":
            return (0, "") if rest in rules else (1, "iptables: Bad rule")
        if action == "-D":
            if rest not in rules:
                return 1, "iptables: Bad rule"
            rules.remove(rest)
            return 0, ""
        raise AssertionError(f"unexpected iptables call {argv}")

    def actions(self, *kinds: str) -> list[list[str]]:
        """The calls that changed something (or of the given actions)."""
        wanted = kinds or ("-N", "-A", "-I", "-D", "-X")
        return [c for c in self.calls if c[4] in wanted]

    def save(self) -> list[str]:
        """What iptables-save would print (every table)."""
        lines: list[str] = []
        for table, chains in self.chains.items():
            lines.append(f"*{table}")
            for chain in chains:
                policy = self.policy if (table, chain) == ("filter", "FORWARD") else "ACCEPT"
                lines.append(f":{chain} {policy if chain in BUILTIN[table] else '-'} [0:0]")
            for chain, rules in chains.items():
                lines += [" ".join(("-A", chain, *r)) for r in rules]
        return lines

    def count(self) -> int:
        return sum(len(rules) for chains in self.chains.values() for rules in chains.values())
