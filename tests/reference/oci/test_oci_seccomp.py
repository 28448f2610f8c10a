"""The seccomp compiler, checked by running its programs in the pure-Python BPF interpreter.

Every test compiles for a fixed native ABI (x86_64 unless said), so none depends on the machine.
The profile builders here are shared by the other test_oci_seccomp_* modules.
"""

from __future__ import annotations

import errno
import operator
from collections.abc import Callable
from typing import Any

import pytest

from reference.errors import ConfigError, UnsupportedError
from reference.linux import syscall as sc
from reference.oci import seccomp_bpf as bpf
from reference.oci.seccomp import compile_seccomp
from reference.oci.seccomp_tables import (
    AUDIT_ARCH_I386,
    AUDIT_ARCH_X86_64,
    X32_SYSCALL_BIT,
    syscall_numbers,
)
from reference.oci.spec import Seccomp, SeccompArg, SeccompSyscall, parse_spec

X86_64, X86, X32 = "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"
ALLOW, LOG, TRAP, KILL, KILL_PROCESS = 0x7FFF0000, 0x7FFC0000, 0x00030000, 0, 0x80000000
EPERM = 0x00050000 | errno.EPERM


def errno_ret(code: int) -> int:
    return 0x00050000 | code


def rule(names: str | tuple[str, ...], action: str = "SCMP_ACT_ERRNO", *args: SeccompArg,
         errno: int | None = None) -> SeccompSyscall:  # fmt: skip
    return SeccompSyscall((names,) if isinstance(names, str) else names, action, errno, args)


def arg(index: int, op: str, value: int, two: int = 0) -> SeccompArg:
    return SeccompArg(index, value, f"SCMP_CMP_{op}", two)


def profile(default: str = "SCMP_ACT_ALLOW", *rules: SeccompSyscall,
            arches: tuple[str, ...] = (), default_errno: int | None = None) -> Seccomp:  # fmt: skip
    return Seccomp(default, default_errno, arches, (), rules)


def nr_of(name: str | int, abi: str = X86_64) -> int:
    return name if isinstance(name, int) else syscall_numbers(abi)[name]


def decide(program: bytes, name: str | int, *args: int, abi: str = X86_64) -> int:
    """What `program` returns for syscall `name` of `abi` with `args`."""
    audit = AUDIT_ARCH_I386 if abi == X86 else AUDIT_ARCH_X86_64
    return bpf.run(program, bpf.seccomp_data(nr_of(name, abi), audit, args))


def compiled(seccomp: Seccomp, *, enosys: bool = False) -> bytes:
    program = compile_seccomp(seccomp, arch="x86_64", enosys=enosys).program
    bpf.check(program)  # everything compiled here must be loadable
    return program


# --- actions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "errno_value", "expected"),
    [
        ("SCMP_ACT_ALLOW", None, ALLOW),
        ("SCMP_ACT_LOG", None, LOG),
        ("SCMP_ACT_TRAP", None, TRAP),
        ("SCMP_ACT_KILL", None, KILL),
        ("SCMP_ACT_KILL_THREAD", None, KILL),
        ("SCMP_ACT_KILL_PROCESS", None, KILL_PROCESS),
        ("SCMP_ACT_ERRNO", None, EPERM),  # runc's default errno
        ("SCMP_ACT_ERRNO", errno.EACCES, errno_ret(errno.EACCES)),
        ("SCMP_ACT_ERRNO", 0, errno_ret(0)),  # errno 0: the call "succeeds" without running
        ("SCMP_ACT_TRACE", None, 0x7FF00000 | errno.EPERM),
        ("SCMP_ACT_TRACE", 38, 0x7FF00000 | 38),
    ],
)
def test_actions_of_rules_and_of_the_default(action: str, errno_value: int | None,
                                             expected: int) -> None:  # fmt: skip
    as_rule = compiled(profile("SCMP_ACT_ALLOW", rule("mkdir", action, errno=errno_value)))
    assert decide(as_rule, "mkdir") == expected
    as_default = compiled(
        profile(action, rule("getpid", "SCMP_ACT_LOG"), default_errno=errno_value)
    )
    assert decide(as_default, "mkdir") == expected
    if expected != LOG:
        assert decide(as_default, "getpid") == LOG


def test_notify_is_unsupported_and_names_the_field() -> None:
    with pytest.raises(
        UnsupportedError, match=r"listenerPath.*linux\.seccomp\.syscalls\[1\]\.action"
    ):
        compile_seccomp(profile("SCMP_ACT_ALLOW", rule("read"), rule("mkdir", "SCMP_ACT_NOTIFY")))
    with pytest.raises(UnsupportedError, match=r"linux\.seccomp\.defaultAction$"):
        compile_seccomp(profile("SCMP_ACT_NOTIFY"))


Mutate = Callable[[dict[str, Any]], None]


def _base_json() -> dict[str, Any]:
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": [X86_64, X86],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
        ],
    }  # fmt: skip


def _set(path: tuple[str | int, ...], value: object) -> Mutate:
    def mutate(c: dict[str, Any]) -> None:
        node: Any = c
        for key in path[:-1]:
            node = node[key]
        key = path[-1]
        if isinstance(key, int) and key == len(node):
            node.append(value)
        else:
            node[key] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "obj", "match"),
    [
        (_set(("defaultAction",), "SCMP_ACT_NOPE"), "linux.seccomp.defaultAction", "unknown"),
        (_set(("syscalls", 1, "action"), "ALLOW"), "linux.seccomp.syscalls[1].action", "unknown"),
        (_set(("syscalls", 0, "errnoRet"), 1), "linux.seccomp.syscalls[0].errnoRet", "no errno"),
        (_set(("defaultErrnoRet",), 70000), "linux.seccomp.defaultErrnoRet", "16 bits"),
        (_set(("syscalls", 1, "args", 0, "index"), 6), "linux.seccomp.syscalls[1].args[0].index",
         "not in"),
        (_set(("syscalls", 1, "args", 0, "op"), "SCMP_CMP_XX"),
         "linux.seccomp.syscalls[1].args[0].op", "unknown operator"),
        (_set(("syscalls", 0, "names"), []), "linux.seccomp.syscalls[0].names", "at least one"),
        (_set(("syscalls", 0, "names"), ["read", ""]), "linux.seccomp.syscalls[0].names[1]",
         "empty"),
        (_set(("architectures",), [X86_64, "SCMP_ARCH_Z80"]), "linux.seccomp.architectures[1]",
         "unknown architecture"),
        (_set(("flags",), ["SECCOMP_FILTER_FLAG_NOPE"]), "linux.seccomp.flags[0]", "unknown"),
        (_set(("syscalls", 2), {"names": ["socket"], "action": "SCMP_ACT_LOG",
                                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}),
         "linux.seccomp.syscalls[2]", r"same conditions as linux\.seccomp\.syscalls\[1\]"),
    ],
)  # fmt: skip
def test_errors_name_the_json_path(mutate: Mutate, obj: str, match: str) -> None:
    data = _base_json()
    mutate(data)
    seccomp = parse_spec({"ociVersion": "1.0.2", "linux": {"seccomp": data}}, create=False)
    assert seccomp.linux.seccomp is not None
    with pytest.raises(ConfigError, match=match) as raised:
        compile_seccomp(seccomp.linux.seccomp, arch="x86_64")
    assert raised.value.obj == obj


def test_flags_and_the_base_profile() -> None:
    seccomp = parse_spec({"ociVersion": "1.0.2", "linux": {"seccomp": _base_json()}}, create=False)
    assert seccomp.linux.seccomp is not None
    out = compile_seccomp(seccomp.linux.seccomp, arch="x86_64")
    assert out.flags == sc.SECCOMP_FILTER_FLAG_LOG
    assert out.arches == (X86_64, X86)
    assert out.instructions == len(out.program) // 8 == sc.bpf_instruction_count(out.program)


# --- architectures ------------------------------------------------------------------------------


def test_native_arch_argument() -> None:
    seccomp = profile("SCMP_ACT_ALLOW", rule("chown32"))
    program = compile_seccomp(seccomp, arch="i686").program
    assert decide(program, "chown32", abi=X86) == EPERM
    assert decide(program, "getpid") == KILL  # x86_64 is not in a filter made on i386
    assert compile_seccomp(seccomp, arch="SCMP_ARCH_X86_64").arches == (X86_64,)
    with pytest.raises(UnsupportedError, match="aarch64"):
        compile_seccomp(seccomp, arch="aarch64")


def test_bad_arch_is_killed_and_foreign_arches_are_ignored() -> None:
    native_only = compile_seccomp(profile("SCMP_ACT_ALLOW"), arch="x86_64")
    assert decide(native_only.program, "getpid") == ALLOW
    assert decide(native_only.program, 20, abi=X86) == KILL  # i386 not in the filter
    aarch64 = bpf.seccomp_data(172, 0xC00000B7)
    assert bpf.run(native_only.program, aarch64) == KILL
    listed = compile_seccomp(profile("SCMP_ACT_ALLOW", arches=("SCMP_ARCH_AARCH64", X86)),
                             arch="x86_64")  # fmt: skip
    assert listed.arches == (X86_64, X86)
    assert listed.ignored_arches == ("SCMP_ARCH_AARCH64",)
    assert decide(listed.program, 20, abi=X86) == ALLOW


def test_x32_half_of_x86_64() -> None:
    seccomp = profile("SCMP_ACT_ALLOW", rule(("getpid", "rt_sigaction")))
    plain = compiled(seccomp)
    assert decide(plain, "getpid") == EPERM
    assert decide(plain, X32_SYSCALL_BIT | 39) == KILL  # x32 getpid: bad arch
    assert decide(plain, 0xFFFFFFFF) == ALLOW  # nr -1: a tracer skipped the call; the default
    both = compiled(profile("SCMP_ACT_ALLOW", *seccomp.syscalls, arches=(X32,)))
    assert decide(both, "getpid") == decide(both, "getpid", abi=X32) == EPERM
    assert decide(both, "rt_sigaction", abi=X32) == EPERM == decide(both, X32_SYSCALL_BIT | 512)
    assert decide(both, X32_SYSCALL_BIT | 13) == ALLOW  # x86_64's rt_sigaction is not x32's
    assert decide(both, "read", abi=X32) == ALLOW


def test_unknown_names_are_skipped_per_abi_and_reported() -> None:
    seccomp = profile("SCMP_ACT_ALLOW", rule(("chown32", "mkdir", "no_such_call")), arches=(X86,))
    out = compile_seccomp(seccomp, arch="x86_64")
    assert [(u.path, u.name, u.arch) for u in out.unknown] == [
        ("linux.seccomp.syscalls[0].names[0]", "chown32", X86_64),
        ("linux.seccomp.syscalls[0].names[2]", "no_such_call", X86_64),
        ("linux.seccomp.syscalls[0].names[2]", "no_such_call", X86),
    ]
    assert "no syscall 'chown32' on SCMP_ARCH_X86_64" in str(out.unknown[0])
    assert decide(out.program, "mkdir") == decide(out.program, "mkdir", abi=X86) == EPERM
    assert decide(out.program, "chown32", abi=X86) == EPERM
    assert decide(out.program, "chown") == ALLOW


# --- rules --------------------------------------------------------------------------------------


def test_rules_with_the_default_action_are_skipped() -> None:
    program = compiled(profile(
        "SCMP_ACT_ERRNO",
        rule("mkdir"),  # same action as the default: runc drops it, so it shadows nothing
        rule("mkdir", "SCMP_ACT_ALLOW", arg(1, "EQ", 0o755)),
    ))  # fmt: skip
    assert decide(program, "mkdir", 0, 0o755) == ALLOW
    assert decide(program, "mkdir", 0, 0o700) == EPERM


def test_unconditional_rule_beats_conditional_ones_and_the_first_one_wins() -> None:
    conditional = rule("socket", "SCMP_ACT_ALLOW", arg(0, "EQ", 1))
    for rules in ([conditional, rule("socket", errno=13)], [rule("socket", errno=13), conditional]):
        program = compiled(profile("SCMP_ACT_LOG", *rules))
        assert decide(program, "socket", 1) == decide(program, "socket", 2) == errno_ret(13)
    first = compiled(profile("SCMP_ACT_LOG", rule("socket", errno=13), rule("socket", errno=14)))
    assert decide(first, "socket") == errno_ret(13)


def test_conditions_are_anded_rules_ored_first_match_wins() -> None:
    program = compiled(profile(
        "SCMP_ACT_ALLOW",
        rule("socket", "SCMP_ACT_ERRNO", arg(0, "EQ", 40), arg(1, "EQ", 1), errno=13),
        rule("socket", "SCMP_ACT_ERRNO", arg(0, "GE", 40), errno=22),
        rule("socket", "SCMP_ACT_KILL", arg(0, "EQ", 41)),  # shadowed by the rule before
    ))  # fmt: skip
    assert decide(program, "socket", 40, 1) == errno_ret(13)
    assert decide(program, "socket", 40, 2) == errno_ret(22)
    assert decide(program, "socket", 41) == errno_ret(22)
    assert decide(program, "socket", 39, 1) == ALLOW


def test_a_repeated_argument_index_splits_the_rule_like_runc() -> None:
    program = compiled(profile(
        "SCMP_ACT_ALLOW", rule("personality", "SCMP_ACT_ERRNO", arg(0, "EQ", 8), arg(0, "EQ", 9))
    ))  # fmt: skip
    assert decide(program, "personality", 8) == decide(program, "personality", 9) == EPERM
    assert decide(program, "personality", 10) == ALLOW


V = 0x1_0000_0005
SAMPLES = [0, 4, 5, 6, V - 1, V, V + 1, 0x1_0000_0000, 0x1_FFFF_FFFF, 0x2_0000_0000,
           0x2_0000_0005, 0xFFFF_FFFF, 2**64 - 1]  # fmt: skip
OPS: dict[str, Callable[[int, int], bool]] = {
    "EQ": operator.eq, "NE": operator.ne, "LT": operator.lt, "LE": operator.le,
    "GT": operator.gt, "GE": operator.ge,
}  # fmt: skip


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("index", [0, 5])
def test_operators_compare_64_bits_on_x86_64(op: str, index: int) -> None:
    for value in (V, 5, 2**64 - 1, 0):
        program = compiled(profile("SCMP_ACT_ALLOW", rule("mkdir", "SCMP_ACT_ERRNO",
                                                          arg(index, op, value))))  # fmt: skip
        for a in SAMPLES:
            args = [0] * 6
            args[index] = a
            want = EPERM if OPS[op](a, value) else ALLOW
            assert decide(program, "mkdir", *args) == want, (op, hex(value), hex(a))


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("abi", [X86, X32])
def test_32_bit_abis_compare_low_halves_like_libseccomp(op: str, abi: str) -> None:
    program = compiled(profile("SCMP_ACT_ALLOW", rule("mkdir", "SCMP_ACT_ERRNO", arg(1, op, V)),
                               arches=(abi,)))  # fmt: skip
    for a in SAMPLES:
        want = EPERM if OPS[op](a & 0xFFFFFFFF, V & 0xFFFFFFFF) else ALLOW
        assert decide(program, "mkdir", 0, a, abi=abi) == want, (op, hex(a))


def test_masked_eq_uses_value_as_mask_and_value_two_as_datum() -> None:
    clone_ns = 0x7E020000  # Docker's clone rule: no namespace flags
    program = compiled(profile(
        "SCMP_ACT_ALLOW",
        rule("clone", "SCMP_ACT_ERRNO", arg(0, "MASKED_EQ", clone_ns, 0x7E020000)),
        rule("unshare", "SCMP_ACT_ERRNO", arg(0, "MASKED_EQ", 0xF_0000_0000, 0x1_FFFF_FFFF)),
        rule("mkdir", "SCMP_ACT_ERRNO", arg(0, "MASKED_EQ", 0, 123)),  # mask 0: always matches
        arches=(X86,),
    ))  # fmt: skip
    assert decide(program, "clone", 0xFFFFFFFF) == EPERM
    assert decide(program, "clone", 0x7E020000 | 0x11) == EPERM
    assert decide(program, "clone", 0x11) == ALLOW
    # datum bits outside the mask do not count: (arg & 0xF_0000_0000) == 0x1_0000_0000
    assert decide(program, "unshare", 0x1_0000_0000) == EPERM
    assert decide(program, "unshare", 0x1_DEAD_BEEF) == EPERM
    assert decide(program, "unshare", 0x2_0000_0000) == ALLOW
    assert decide(program, "unshare", 0, abi=X86) == EPERM  # i386: mask's low half is 0
    assert decide(program, "mkdir", 7) == EPERM


# --- runc's ENOSYS stub ---------------------------------------------------------------------------


def test_enosys_for_syscalls_newer_than_the_profile() -> None:
    seccomp = profile("SCMP_ACT_ERRNO", rule(("read", "openat2"), "SCMP_ACT_ALLOW"),
                      arches=(X86_64, X86))  # fmt: skip
    enosys = errno_ret(errno.ENOSYS)
    program = compiled(seccomp, enosys=True)
    assert decide(program, "openat2") == ALLOW
    assert decide(program, "faccessat2") == enosys  # 439 > 437, the largest named
    assert decide(program, "write") == EPERM  # older: the default
    assert decide(program, "faccessat2", abi=X86) == enosys
    assert decide(program, X32_SYSCALL_BIT | 439) == KILL  # x32 is not listed: bad arch
    assert decide(compiled(seccomp), "faccessat2") == EPERM  # enosys=False: libseccomp alone
    unlisted = profile("SCMP_ACT_ERRNO", *seccomp.syscalls)
    assert decide(compiled(unlisted, enosys=True), "faccessat2") == EPERM
    permissive = profile("SCMP_ACT_LOG", rule("openat2"), arches=(X86_64,))
    assert decide(compiled(permissive, enosys=True), "faccessat2") == LOG
