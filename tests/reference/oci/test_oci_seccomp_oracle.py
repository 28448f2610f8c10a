"""Compiled programs against two oracles, on random profiles and inputs.

`model` states the compiler's documented semantics directly, with no trees or chains: a random
profile's program must agree with it everywhere. libseccomp (through ctypes, if the machine has
libseccomp.so.2; nothing is loaded into the kernel) is the second oracle, on the profile shapes
where libseccomp 2.5.4 is itself right: it mis-compiles some x86_64+x32 filters (nr never loaded)
and some rules repeating 64-bit range checks on one argument (stale accumulator), and can hang on
others, so it runs in a forked child with an alarm. The syscall tables are checked against the
kernel headers and libseccomp where present.
"""

from __future__ import annotations

import ctypes
import errno
import os
import random
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference.errors import ConfigError
from reference.oci import seccomp_bpf as bpf
from reference.oci.seccomp import ACTIONS, compile_seccomp
from reference.oci.seccomp_tables import (
    AUDIT_ARCH,
    AUDIT_ARCH_I386,
    AUDIT_ARCH_X86_64,
    X32_SYSCALL_BIT,
    syscall_numbers,
)
from reference.oci.spec import Seccomp, SeccompArg, SeccompSyscall
from tests.reference.oci.test_oci_seccomp import X32, X86, X86_64

M32 = 0xFFFFFFFF
ABIS = (X86_64, X86, X32)
LIBSECCOMP_ARCH = {X86_64: 0xC000003E, X86: 0x40000003, X32: 0x4000003E}
OPS = (
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
)  # fmt: skip  (libseccomp's enum scmp_compare is 1 + the index)
ACTS = ("SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE", "SCMP_ACT_LOG", "SCMP_ACT_ALLOW")  # fmt: skip
VALUES = (0, 1, 2, 40, M32, 2**32, 2**32 + 1, 2**64 - 2**32, 2**64 - 1, 0x7E020000, 2**31)


def action(name: str, errno_ret: int | None) -> int:
    if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        return ACTIONS[name] | (errno.EPERM if errno_ret is None else errno_ret)
    return ACTIONS[name]


def holds(c: SeccompArg, value: int, wide: bool) -> bool:
    v, w = (c.value, c.value_two) if wide else (c.value & M32, c.value_two & M32)
    a = value if wide else value & M32
    return {"SCMP_CMP_EQ": a == v, "SCMP_CMP_NE": a != v, "SCMP_CMP_LT": a < v,
            "SCMP_CMP_LE": a <= v, "SCMP_CMP_GT": a > v, "SCMP_CMP_GE": a >= v,
            "SCMP_CMP_MASKED_EQ": a & v == w & v}[c.op]  # fmt: skip


def model(s: Seccomp, nr: int, arch: int, args: tuple[int, ...], enosys: bool = True) -> int:
    """What the filter must return, from the rules as seccomp.py's docstring states them."""
    default = action(s.default_action, s.default_errno_ret)
    abis = {X86_64} | {a for a in s.architectures if a in ABIS}
    group = [a for a in ABIS if a in abis and AUDIT_ARCH[a] == arch]
    if not group:
        return 0  # bad arch: KILL_THREAD
    if enosys and default & 0xFFFF0000 not in (0x7FFF0000, 0x7FFC0000, 0x7FF00000):
        for abi in group:
            if abi not in s.architectures:  # runc stubs the listed ABIs only
                continue
            if abi != X86 and (abi == X32) != bool(nr & X32_SYSCALL_BIT):
                continue  # x86_64's stub leaves x32 numbers alone, and the other way round
            table = syscall_numbers(abi)
            named = [table[n] for r in s.syscalls for n in r.names if n in table]
            if named and nr > max(named):
                return 0x50000 | errno.ENOSYS
    if arch == AUDIT_ARCH_X86_64 and group == [X86_64] and nr >= X32_SYSCALL_BIT:
        return default if nr == M32 else 0
    if arch == AUDIT_ARCH_X86_64 and group == [X32] and nr < X32_SYSCALL_BIT:
        return 0
    first_conditional = None
    for abi in group:
        table, wide = syscall_numbers(abi), abi == X86_64
        for r in s.syscalls:
            act = action(r.action, r.errno_ret)
            if act == default or not any(table.get(n) == nr for n in r.names):
                continue
            indexes = [c.index for c in r.args]
            repeated = len(set(indexes)) < len(indexes)
            for alternative in [[c] for c in r.args] if repeated else [list(r.args)]:
                live = [c for c in alternative if c.op != "SCMP_CMP_MASKED_EQ" or _mask(c, wide)]
                if not live:
                    return act  # the first unconditional rule beats everything
                if first_conditional is None and all(holds(c, args[c.index], wide) for c in live):
                    first_conditional = act
    return default if first_conditional is None else first_conditional


def _mask(c: SeccompArg, wide: bool) -> int:
    return c.value if wide else c.value & M32


def random_profile(rng: random.Random, pool: list[str], *, tame: bool) -> Seccomp:
    """`tame` keeps to what libseccomp 2.5.4 compiles right: no x32, one action and one set of
    argument indexes per syscall's conditional rules, no repeated index in a rule."""
    arches = [a for a in ABIS if not (tame and a == X32)]
    default = rng.choice(ACTS)
    names = rng.sample(pool, 12)
    rules: list[SeccompSyscall] = []
    actions: dict[str, str] = {}
    indexes: dict[str, frozenset[int]] = {}
    for _ in range(rng.randrange(1, 25)):
        ns = tuple(rng.sample(names, rng.randrange(1, 4)))
        act = rng.choice(ACTS)
        args = []
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
            op = rng.choice(OPS)
            two = rng.choice(VALUES) if op == "SCMP_CMP_MASKED_EQ" else 0
            args.append(SeccompArg(rng.randrange(3), rng.choice(VALUES), op, two))
        idx = frozenset(a.index for a in args)
        if (
            tame
            and args
            and (
                len(idx) < len(args)
                or any(actions.setdefault(n, act) != act for n in ns)
                or any(indexes.setdefault(n, idx) != idx for n in ns)
            )
        ):
            continue
        e = rng.choice((None, 1, 13, 38)) if act in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE") else None
        rules.append(SeccompSyscall(ns, act, e, tuple(args)))
    de = rng.choice((None, 1, 2)) if default in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE") else None
    listed = tuple(rng.sample(arches, rng.randrange(0, len(arches) + 1)))
    return Seccomp(default, de, listed, (), tuple(rules))


Input = tuple[int, int, tuple[int, ...]]  # nr, arch, args


def inputs(rng: random.Random, s: Seccomp, per_nr: int = 3) -> Iterator[Input]:
    nrs = {5, 1000, M32, X32_SYSCALL_BIT | 5}
    for r in s.syscalls:
        for name in r.names:
            nrs |= {t[name] for t in map(syscall_numbers, ABIS) if name in t}
    near = sorted({v + d for v in VALUES for d in (-1, 0, 1) if 0 <= v + d < 2**64})
    for nr in sorted(nrs):
        for arch in (AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, 0xC00000B7):
            for _ in range(per_nr):
                yield nr, arch, tuple(rng.choice(near) for _ in range(3))


POOL = sorted(set().union(*map(syscall_numbers, ABIS)))


@pytest.mark.parametrize("seed", range(8))
def test_random_profiles_agree_with_the_model(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(12):
        s = random_profile(rng, POOL, tame=False)
        try:
            out = compile_seccomp(s, arch="x86_64")
        except ConfigError as e:  # only the documented refusal: identical conditions, 2 actions
            if "same conditions" not in str(e):
                raise
            continue
        bpf.check(out.program)
        plain = compile_seccomp(s, arch="x86_64", enosys=False).program
        for nr, arch, args in inputs(rng, s):
            data = bpf.seccomp_data(nr, arch, args)
            assert bpf.run(out.program, data) == model(s, nr, arch, args), (hex(nr), arch, args, s)
            assert bpf.run(plain, data) == model(s, nr, arch, args, enosys=False)


# --- libseccomp ---------------------------------------------------------------------------------


class _Cmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]  # fmt: skip


def _libseccomp() -> ctypes.CDLL:
    if os.uname().machine != "x86_64":
        pytest.skip("compares with libseccomp's native x86_64 filters")
    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        pytest.skip("libseccomp.so.2 is not installed")
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(_Cmp)]  # fmt: skip
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    return lib


def libseccomp_program(lib: ctypes.CDLL, s: Seccomp) -> bytes | None:
    """What runc gets from libseccomp for `s` (its matchCall loop), or None if libseccomp
    refused a rule. Runs in a forked child: libseccomp can hang on some rule sets."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        try:
            os.close(r)
            signal.alarm(10)
            with open(w, "wb") as out:
                out.write(_export(lib, s))
        finally:
            os._exit(0)
    os.close(w)
    with open(r, "rb") as pipe:
        raw = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert status == 0, f"libseccomp died or hung ({status:#x}) on {s}"
    return raw or None


def _export(lib: ctypes.CDLL, s: Seccomp) -> bytes:
    default = action(s.default_action, s.default_errno_ret)
    ctx = lib.seccomp_init(default)
    for a in s.architectures:
        assert lib.seccomp_arch_add(ctx, LIBSECCOMP_ARCH[a]) in (0, -errno.EEXIST)
    for r in s.syscalls:
        act = action(r.action, r.errno_ret)
        for name in r.names:
            nr = lib.seccomp_syscall_resolve_name(name.encode())
            if act == default or nr == -1:  # runc skips both
                continue
            conds = [_Cmp(c.index, OPS.index(c.op) + 1, c.value, c.value_two) for c in r.args]
            indexes = [c.index for c in r.args]
            for group in [[c] for c in conds] if len(set(indexes)) < len(indexes) else [conds]:
                if lib.seccomp_rule_add_array(ctx, act, nr, len(group), (_Cmp * 6)(*group)):
                    return b""
    fd = os.memfd_create("bpf")
    assert lib.seccomp_export_bpf(ctx, fd) == 0
    return os.pread(fd, 1 << 20, 0)


@pytest.mark.parametrize("seed", range(4))
def test_random_profiles_agree_with_libseccomp(seed: int) -> None:
    lib = _libseccomp()
    # Only names this libseccomp numbers like our tables on every ABI (it may be older).
    pool = [n for n in POOL if all(_resolve(lib, a, n) == syscall_numbers(a).get(n) for a in ABIS)]
    rng = random.Random(seed)
    compared = 0
    for _ in range(20):
        s = random_profile(rng, pool, tame=True)
        theirs = libseccomp_program(lib, s)
        if theirs is None:
            continue
        ours = compile_seccomp(s, arch="x86_64", enosys=False).program
        for nr, arch, args in inputs(rng, s, per_nr=2):
            data = bpf.seccomp_data(nr, arch, args)
            assert bpf.run(ours, data) == bpf.run(theirs, data), (hex(nr), arch, args, s)
            compared += 1
    assert compared > 1000


def _resolve(lib: ctypes.CDLL, abi: str, name: str) -> int | None:
    nr: int = lib.seccomp_syscall_resolve_name_arch(LIBSECCOMP_ARCH[abi], name.encode())
    return None if nr < 0 else nr


@pytest.mark.parametrize("abi", ABIS)
def test_tables_agree_with_libseccomp(abi: str) -> None:
    lib = _libseccomp()
    ours = syscall_numbers(abi)
    # Every name libseccomp numbers for the ABI, we number the same; we may know newer ones.
    for name in [*POOL, "chown32", "socketcall", "arch_prctl", "uretprobe"]:
        theirs = _resolve(lib, abi, name)
        if theirs is not None:
            assert ours.get(name) == theirs, name
    assert len(ours) > 350


@pytest.mark.parametrize(("abi", "header"), [(X86_64, "64"), (X86, "32"), (X32, "x32")])
def test_tables_agree_with_kernel_headers(abi: str, header: str) -> None:
    path = Path(f"/usr/include/x86_64-linux-gnu/asm/unistd_{header}.h")
    if not path.exists():
        pytest.skip(f"{path} is not installed (linux-libc-dev)")
    pattern = r"#define __NR_(\w+) (?:\(__X32_SYSCALL_BIT \+ )?(\d+)"
    bit = X32_SYSCALL_BIT if abi == X32 else 0
    found = {m[1]: int(m[2]) | bit for m in re.finditer(pattern, path.read_text())}
    assert len(found) > 300
    ours = syscall_numbers(abi)
    assert {n: ours.get(n) for n in found} == found
