"""Code generation for seccomp.py: resolved rules -> the BPF program of one filter.

Layout: load arch, one jeq per AUDIT_ARCH in the filter, then `ret` the bad-arch action. Each arch
section loads nr, applies runc's ENOSYS stub and libseccomp's x86_64/x32 split, then binary-searches
nr over maximal ranges of one outcome (O(log n) compares per syscall, not one per syscall named)
into the section's shared `ret` blocks and per-syscall argument blocks. An argument block tries its
rules in order, each a chain of 32-bit compares, and returns the first match's action or the
default. Jumps go forward only; far ones become BPF_JA trampolines in seccomp_bpf.Assembler.
"""

from __future__ import annotations

import errno

from reference.oci import seccomp_bpf as bpf
from reference.oci.seccomp_tables import (
    AUDIT_ARCH,
    AUDIT_ARCH_X86_64,
    SCMP_ARCH_X32,
    SCMP_ARCH_X86_64,
    WIDE_ABIS,
    X32_SYSCALL_BIT,
)

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; see linux/syscall.py for why
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NamedTuple
else:
    from reference.records import NamedTuple  # typing.NamedTuple without importing typing

EQ, NE, LT, LE, GE, GT, MASKED_EQ = (
    "SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_GE", "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
)  # fmt: skip
BAD_ARCH_ACTION = bpf.RET_KILL_THREAD  # libseccomp's SCMP_FLTATR_ACT_BADARCH default, kept by runc
_ENOSYS = bpf.RET_ERRNO | errno.ENOSYS
_M32 = 0xFFFFFFFF

# Each comparison as steps (word, jump, jump-if-true, jump-if-false) on 32-bit halves; the
# branches go to the next step, or settle the condition (_OK / _FAIL).
_NEXT, _OK, _FAIL = 0, 1, 2
_Step = tuple[str, int, int, int]
_JEQ, _JGT, _JGE = bpf.JEQ_K, bpf.JGT_K, bpf.JGE_K
STEPS_64: dict[str, list[_Step]] = {
    EQ: [("hi", _JEQ, _NEXT, _FAIL), ("lo", _JEQ, _OK, _FAIL)],
    NE: [("hi", _JEQ, _NEXT, _OK), ("lo", _JEQ, _FAIL, _OK)],
    GT: [("hi", _JGT, _OK, _NEXT), ("hi", _JEQ, _NEXT, _FAIL), ("lo", _JGT, _OK, _FAIL)],
    GE: [("hi", _JGT, _OK, _NEXT), ("hi", _JEQ, _NEXT, _FAIL), ("lo", _JGE, _OK, _FAIL)],
    LT: [("hi", _JGT, _FAIL, _NEXT), ("hi", _JEQ, _NEXT, _OK), ("lo", _JGE, _FAIL, _OK)],
    LE: [("hi", _JGT, _FAIL, _NEXT), ("hi", _JEQ, _NEXT, _OK), ("lo", _JGT, _FAIL, _OK)],
}
# A 32-bit ABI compares the low halves only: the last step of each sequence.
_STEPS_32: dict[str, list[_Step]] = {op: steps[-1:] for op, steps in STEPS_64.items()}


# NamedTuples rather than dataclasses: a fraction of the import time (refrun starts per call);
# at run time reference.records' stand-in, which does not import typing.
class Cond(NamedTuple):
    """One argument comparison, as the ABI evaluates it (see seccomp._chain)."""

    arg: int  # which argument, 0-5
    op: str
    value: int
    value_two: int


Chain = tuple[Cond, ...]  # conditions that must all hold
Rule = tuple[Chain, int, str]  # conditions, action, JSON path of the rule


class Resolved(NamedTuple):
    """One ABI's rules by syscall number."""

    uncond: dict[int, int]  # nr -> action
    cond: dict[int, list[Rule]]  # nr -> rules, tried in order
    enosys_above: int | None  # runc's stub: ENOSYS for nr above this (None: no stub)


def generate(abis: dict[str, Resolved], default: int) -> bytes:
    """The program for `abis` (ABI name -> its rules, native first) with `default` action."""
    asm = bpf.Assembler()
    asm.load(bpf.OFF_ARCH)
    groups: dict[int, dict[str, Resolved]] = {}
    for abi, resolved in abis.items():
        groups.setdefault(AUDIT_ARCH[abi], {})[abi] = resolved
    entries = {audit: asm.label() for audit in groups}
    for audit, label in entries.items():
        asm.jump(bpf.JEQ_K, audit, label, None)
    asm.ret(BAD_ARCH_ACTION)
    for audit, members in groups.items():
        asm.place(entries[audit])
        _section(asm, audit, members, default)
    return asm.assemble()


def _section(asm: bpf.Assembler, audit: int, abis: dict[str, Resolved], default: int) -> None:
    """One AUDIT_ARCH's part of the program (for x86_64, its x32 half too)."""
    rets: dict[int, int] = {}  # action -> label of this section's `ret action`

    def ret(action: int) -> int:
        return rets.setdefault(action, asm.label())

    asm.load(bpf.OFF_NR)
    dispatch = asm.label()
    if audit == AUDIT_ARCH_X86_64:
        _x86_64_head(asm, abis, ret, default, dispatch)
    else:
        (largest,) = (entry.enosys_above for entry in abis.values())
        if largest is not None:
            asm.jump(bpf.JGT_K, largest, ret(_ENOSYS), None)
    asm.place(dispatch)

    targets: dict[int, int] = {}
    # Syscalls with the same rules share one block (x86_64 and x32 differ in argument width).
    blocks: dict[tuple[bool, tuple[tuple[Chain, int], ...]], tuple[int, list[Rule]]] = {}
    for abi, resolved in abis.items():
        for nr, action in resolved.uncond.items():
            targets[nr] = ret(action)
        for nr, rules in resolved.cond.items():
            key = (abi in WIDE_ABIS, tuple((chain, action) for chain, action, _ in rules))
            if key not in blocks:
                blocks[key] = (asm.label(), rules)
            targets[nr] = blocks[key][0]
    _search(asm, targets, ret(default))
    for action, label in rets.items():
        asm.place(label)
        asm.ret(action)
    for (wide, _), (label, rules) in blocks.items():
        asm.place(label)
        _block(asm, rules, default, wide)


def _x86_64_head(
    asm: bpf.Assembler,
    abis: dict[str, Resolved],
    ret: Callable[[int], int],
    default: int,
    dispatch: int,
) -> None:
    """runc's ENOSYS stub, then libseccomp's x86_64/x32 split (bit 30 of nr marks x32)."""
    big = abis[SCMP_ARCH_X86_64].enosys_above if SCMP_ARCH_X86_64 in abis else None
    small = abis[SCMP_ARCH_X32].enosys_above if SCMP_ARCH_X32 in abis else None
    enosys = ret(_ENOSYS) if big is not None or small is not None else 0
    split = asm.label()
    if big is not None and small is not None:
        x32 = asm.label()
        asm.jump(bpf.JSET_K, X32_SYSCALL_BIT, x32, None)
        asm.jump(bpf.JGT_K, big, enosys, split)
        asm.place(x32)
        asm.jump(bpf.JGT_K, small, enosys, split)
    elif big is not None:
        asm.jump(bpf.JSET_K, X32_SYSCALL_BIT, split, None)
        asm.jump(bpf.JGT_K, big, enosys, split)
    elif small is not None:
        asm.jump(bpf.JSET_K, X32_SYSCALL_BIT, None, split)
        asm.jump(bpf.JGT_K, small, enosys, split)
    asm.place(split)
    if SCMP_ARCH_X32 not in abis:  # x32 calls are a bad arch; nr -1 (skipped call) the default
        high = asm.label()
        asm.jump(bpf.JGE_K, X32_SYSCALL_BIT, high, dispatch)
        asm.place(high)
        asm.jump(bpf.JEQ_K, _M32, ret(default), ret(BAD_ARCH_ACTION))
    elif SCMP_ARCH_X86_64 not in abis:
        asm.jump(bpf.JGE_K, X32_SYSCALL_BIT, dispatch, ret(BAD_ARCH_ACTION))


def _search(asm: bpf.Assembler, targets: dict[int, int], default: int) -> None:
    """Binary search of nr over maximal ranges with one outcome (gaps: the default)."""
    segments: list[tuple[int, int]] = []  # (first nr, label), covering [0, 2**32)

    def add(first: int, label: int) -> None:
        if not segments or segments[-1][1] != label:
            segments.append((first, label))

    following = 0
    for nr in sorted(targets):
        if nr > following:
            add(following, default)
        add(nr, targets[nr])
        following = nr + 1
    if following <= _M32:
        add(following, default)
    if len(segments) == 1:
        asm.ja(segments[0][1])
        return

    def node(lo: int, hi: int) -> None:  # segments[lo:hi], at least two
        mid = (lo + hi) // 2
        right = segments[mid][1] if hi - mid == 1 else asm.label()
        left = segments[lo][1] if mid - lo == 1 else None  # a subtree follows directly
        asm.jump(bpf.JGE_K, segments[mid][0], right, left)
        if left is None:
            node(lo, mid)
        if hi - mid > 1:
            asm.place(right)
            node(mid, hi)

    node(0, len(segments))


def _block(asm: bpf.Assembler, rules: list[Rule], default: int, wide: bool) -> None:
    """One syscall's conditional rules: the first whose conditions all hold decides."""
    rets: dict[int, int] = {}
    for chain, action, _ in rules:
        fail = asm.label()
        ok = rets.setdefault(action, asm.label())
        for n, cond in enumerate(chain):
            _compare(asm, cond, wide, ok if n == len(chain) - 1 else None, fail)
        asm.place(fail)
    asm.ret(default)
    for action, label in rets.items():
        asm.place(label)
        asm.ret(action)


def _compare(asm: bpf.Assembler, c: Cond, wide: bool, ok: int | None, fail: int) -> None:
    """Code for one condition; it goes on to `ok` (None: what follows) or to `fail`."""
    end = asm.label() if ok is None else ok
    lo = bpf.OFF_ARGS + 8 * c.arg  # args are u64 in host order: little-endian on x86
    offsets = {"lo": lo, "hi": lo + 4}
    branch = {_OK: end, _FAIL: fail}
    if c.op == MASKED_EQ:
        halves = [("hi", c.value >> 32, c.value_two >> 32)] if wide else []
        halves.append(("lo", c.value & _M32, c.value_two & _M32))
        halves = [h for h in halves if h[1]]  # a zero half of the mask always matches
        for n, (word, mask, datum) in enumerate(halves):
            asm.load(offsets[word])
            asm.op(bpf.AND_K, mask)
            asm.jump(bpf.JEQ_K, datum, end if n == len(halves) - 1 else None, fail)
    else:
        loaded = ""
        for word, code, jt, jf in (STEPS_64 if wide else _STEPS_32)[c.op]:
            if word != loaded:
                asm.load(offsets[word])
                loaded = word
            k = c.value >> 32 if word == "hi" else c.value & _M32
            asm.jump(code, k, branch.get(jt), branch.get(jf))
    if ok is None:
        asm.place(end)
