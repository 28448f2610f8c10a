"""Compile an OCI `linux.seccomp` section into the BPF program that seccomp(2) loads.

runc hands the section to libseccomp; this compiler produces a program that decides the same way
for every (arch, syscall, arguments), so containers behave as under runc:

- Actions: SCMP_ACT_KILL is KILL_THREAD; ERRNO and TRACE without errnoRet return EPERM (runc).
  SCMP_ACT_NOTIFY needs `listenerPath`, which this runtime does not model: UnsupportedError.
- Architectures: the native ABI plus those listed. Listed ABIs of other machines are ignored (the
  kernel never reports them here). A syscall from an ABI outside the filter gets libseccomp's
  bad-arch action, KILL_THREAD; on x86_64 without x32, x32 numbers (bit 30) count as a bad arch,
  except nr -1, which a tracer uses to skip a call (libseccomp: the default action).
- Names are resolved per ABI; a name an ABI lacks (chown32 on x86_64) is skipped for that ABI and
  reported in `CompiledFilter.unknown`, as libseccomp skips and runc logs at debug level.
- A rule whose action equals the default is skipped (runc). Conditions on different arguments are
  AND-ed; if a rule repeats an argument index, each condition becomes a rule of its own (runc's
  fallback). Rules for one syscall are OR-ed: an unconditional rule beats every conditional one
  and the first unconditional rule wins (libseccomp keeps the first); among conditional rules the
  first match in spec order wins (libseccomp orders overlapping rules of different actions by
  its own tree, or refuses them); identical conditions with different actions are an error
  (libseccomp: EEXIST).
- Arguments are compared as 64-bit values, in two 32-bit halves; on the 32-bit ABIs (i386, x32)
  the low halves only, rule values truncated (libseccomp). MASKED_EQ: `value` is the mask,
  `valueTwo` the datum, compared as (arg & mask) == (datum & mask); a zero mask always matches.
- ENOSYS for syscalls newer than the profile (runc's patchbpf stub, on by default: libc wrappers
  fall back from a new syscall to an old one on ENOSYS, not on EPERM): for each *listed* ABI, a
  number above the largest one the profile names returns ERRNO(ENOSYS), unless the default action
  is ALLOW, LOG or TRACE.
- Not done: i386 socketcall(2)/ipc(2) demultiplexing (libseccomp also applies a `socket` rule to
  socketcall(SYS_SOCKET, ...)); here rules match the direct calls only.

seccomp_codegen.py lays the program out; seccomp_bpf.py assembles (and, for tests, runs) BPF.
"""

from __future__ import annotations

import errno
import os

from reference.errors import ConfigError, UnsupportedError
from reference.linux.syscall import (
    BPF_INSN_SIZE,
    BPF_MAXINSNS,
    SECCOMP_FILTER_FLAG_LOG,
    SECCOMP_FILTER_FLAG_SPEC_ALLOW,
    SECCOMP_FILTER_FLAG_TSYNC,
    SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
)
from reference.oci import seccomp_bpf as bpf
from reference.oci.seccomp_codegen import MASKED_EQ, STEPS_64, Chain, Cond, Resolved, Rule, generate
from reference.oci.seccomp_tables import AUDIT_ARCH, MACHINES, WIDE_ABIS, syscall_numbers
from reference.oci.validate import SECCOMP_ARCHES

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; see linux/syscall.py for why
if TYPE_CHECKING:
    from typing import NamedTuple

    from reference.oci.spec import Seccomp, SeccompArg
else:
    from reference.records import NamedTuple  # typing.NamedTuple without importing typing

ACTIONS: dict[str, int] = {
    "SCMP_ACT_KILL": bpf.RET_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": bpf.RET_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": bpf.RET_KILL_PROCESS,
    "SCMP_ACT_TRAP": bpf.RET_TRAP,
    "SCMP_ACT_ERRNO": bpf.RET_ERRNO,
    "SCMP_ACT_TRACE": bpf.RET_TRACE,
    "SCMP_ACT_LOG": bpf.RET_LOG,
    "SCMP_ACT_ALLOW": bpf.RET_ALLOW,
    "SCMP_ACT_NOTIFY": bpf.RET_USER_NOTIF,
}
_WITH_ERRNO = frozenset({"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"})
# Default actions under which runc adds no ENOSYS stub: they let unknown syscalls through anyway.
_PERMISSIVE = frozenset({bpf.RET_ALLOW, bpf.RET_LOG, bpf.RET_TRACE})

FLAGS: dict[str, int] = {
    "SECCOMP_FILTER_FLAG_TSYNC": SECCOMP_FILTER_FLAG_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": SECCOMP_FILTER_FLAG_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": SECCOMP_FILTER_FLAG_SPEC_ALLOW,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
}

_M32 = 0xFFFFFFFF
_ROOT = "linux.seccomp"
_Parsed = tuple[str, tuple[str, ...], int, list[Chain]]  # path, names, action, alternatives


class UnknownSyscall(NamedTuple):
    """A profile name that an ABI of the filter has no number for; the rule skips it there."""

    path: str  # e.g. linux.seccomp.syscalls[0].names[13]
    name: str
    arch: str

    def __str__(self) -> str:
        return f"{self.path}: no syscall {self.name!r} on {self.arch}, skipped"


class CompiledFilter(NamedTuple):
    program: bytes  # struct sock_filter[], host byte order, for SECCOMP_SET_MODE_FILTER
    flags: int  # SECCOMP_FILTER_FLAG_* from `flags`, for seccomp(2)'s flags argument
    arches: tuple[str, ...]  # ABIs the program covers, native first
    ignored_arches: tuple[str, ...]  # listed ABIs of other machines
    unknown: tuple[UnknownSyscall, ...]

    @property
    def instructions(self) -> int:
        return len(self.program) // BPF_INSN_SIZE


def compile_filter(seccomp: Seccomp, *, arch: str | None = None, enosys: bool = True) -> bytes:
    """The BPF program for `seccomp` (see compile_seccomp)."""
    return compile_seccomp(seccomp, arch=arch, enosys=enosys).program


def compile_seccomp(
    seccomp: Seccomp, *, arch: str | None = None, enosys: bool = True
) -> CompiledFilter:
    """Compile `seccomp` for the native ABI `arch` (os.uname().machine or SCMP_ARCH_*; default:
    this machine). `enosys=False` drops runc's ENOSYS stub, leaving libseccomp's plain filter.
    Raises ConfigError naming the JSON path of a bad field, UnsupportedError for NOTIFY or an
    architecture without a syscall table."""
    native = _native(arch)
    default = _action(
        seccomp.default_action,
        seccomp.default_errno_ret,
        f"{_ROOT}.defaultAction",
        f"{_ROOT}.defaultErrnoRet",
    )
    flags = filter_flags(seccomp)
    arches, ignored = _arches(native, seccomp.architectures)
    rules = _parse_rules(seccomp)
    stub = enosys and default & ~bpf.RET_DATA not in _PERMISSIVE
    unknown: list[UnknownSyscall] = []
    resolved: dict[str, Resolved] = {}
    for abi in arches:
        entry = _resolve(abi, rules, default, unknown)
        if not (stub and abi in seccomp.architectures):  # runc stubs only the listed ABIs
            entry = entry._replace(enosys_above=None)
        resolved[abi] = entry
    program = generate(resolved, default)
    count = len(program) // BPF_INSN_SIZE
    if count > BPF_MAXINSNS:
        raise ConfigError(
            f"the filter needs {count} BPF instructions, over the kernel's limit of {BPF_MAXINSNS}",
            obj=f"{_ROOT}.syscalls",
        )
    return CompiledFilter(program, flags, tuple(arches), tuple(ignored), tuple(unknown))


def filter_flags(seccomp: Seccomp) -> int:
    """seccomp(2) flags for `seccomp.flags`; an unknown name is a ConfigError naming it."""
    flags = 0
    for i, name in enumerate(seccomp.flags):
        bit = FLAGS.get(name)
        if bit is None:
            raise ConfigError(f"unknown seccomp flag {name!r}", obj=f"{_ROOT}.flags[{i}]")
        flags |= bit
    return flags


def _native(arch: str | None) -> str:
    name = os.uname().machine if arch is None else arch
    native = name if name in AUDIT_ARCH else MACHINES.get(name)
    if native is None:
        raise UnsupportedError("seccomp: no syscall table for architecture", obj=name)
    return native


def _arches(native: str, listed: tuple[str, ...]) -> tuple[list[str], list[str]]:
    arches, ignored = [native], []
    for i, name in enumerate(listed):
        if name in AUDIT_ARCH:
            if name not in arches:
                arches.append(name)
        elif name in SECCOMP_ARCHES:
            ignored.append(name)  # another machine's ABI: the kernel never reports it here
        else:
            raise ConfigError(f"unknown architecture {name!r}", obj=f"{_ROOT}.architectures[{i}]")
    return arches, ignored


def _action(name: str, errno_ret: int | None, path: str, errno_path: str) -> int:
    action = ACTIONS.get(name)
    if action is None:
        raise ConfigError(f"unknown action {name!r}", obj=path)
    if action == bpf.RET_USER_NOTIF:
        raise UnsupportedError(
            "SCMP_ACT_NOTIFY needs a seccomp agent (listenerPath), not supported", obj=path
        )
    if name not in _WITH_ERRNO:
        if errno_ret is not None:
            raise ConfigError(f"{name} takes no errno", obj=errno_path)
        return action
    ret = errno.EPERM if errno_ret is None else errno_ret
    if not 0 <= ret <= bpf.RET_DATA:
        raise ConfigError(
            f"errno {ret} does not fit the 16 bits of SECCOMP_RET_DATA", obj=errno_path
        )
    return action | ret


def _parse_rules(seccomp: Seccomp) -> list[_Parsed]:
    """Each rule as (path, names, action, alternatives), checked once for every ABI."""
    rules: list[_Parsed] = []
    for i, rule in enumerate(seccomp.syscalls):
        at = f"{_ROOT}.syscalls[{i}]"
        if not rule.names:
            raise ConfigError("at least one syscall name is required", obj=f"{at}.names")
        for j, name in enumerate(rule.names):
            if not name:
                raise ConfigError("empty syscall name", obj=f"{at}.names[{j}]")
        action = _action(rule.action, rule.errno_ret, f"{at}.action", f"{at}.errnoRet")
        conds = tuple(_cond(arg, f"{at}.args[{k}]") for k, arg in enumerate(rule.args))
        repeated = len({c.arg for c in conds}) < len(conds)
        alternatives: list[Chain] = [(c,) for c in conds] if repeated else [conds]
        rules.append((at, rule.names, action, alternatives))
    return rules


def _cond(arg: SeccompArg, path: str) -> Cond:
    if not 0 <= arg.index <= 5:  # a syscall has at most six arguments
        raise ConfigError(f"argument index {arg.index} not in [0, 5]", obj=f"{path}.index")
    if arg.op != MASKED_EQ and arg.op not in STEPS_64:
        raise ConfigError(f"unknown operator {arg.op!r}", obj=f"{path}.op")
    for key, value in (("value", arg.value), ("valueTwo", arg.value_two)):
        if not 0 <= value < 1 << 64:
            raise ConfigError(f"{value} is not a 64-bit unsigned value", obj=f"{path}.{key}")
    return Cond(arg.index, arg.op, arg.value, arg.value_two)


def _chain(conds: Chain, wide: bool) -> Chain:
    """The conditions as one ABI evaluates them: 32-bit ABIs see the low halves; tautologies
    (MASKED_EQ with a zero mask) drop out, possibly leaving an unconditional rule."""
    out = []
    for c in conds:
        value, two = (c.value, c.value_two) if wide else (c.value & _M32, c.value_two & _M32)
        if c.op == MASKED_EQ:
            if value == 0:
                continue
            two &= value  # libseccomp compares (arg & mask) == (datum & mask)
        out.append(Cond(c.arg, c.op, value, two))
    return tuple(sorted(out))


def _resolve(
    abi: str,
    rules: list[_Parsed],
    default: int,
    unknown: list[UnknownSyscall],
) -> Resolved:
    """One ABI's rules by syscall number; `enosys_above` is the largest number the profile names
    (for the ENOSYS stub; runc counts every rule, whatever its action)."""
    table = syscall_numbers(abi)
    wide = abi in WIDE_ABIS
    uncond: dict[int, int] = {}
    cond: dict[int, list[Rule]] = {}
    largest: int | None = None
    for at, names, action, alternatives in rules:
        chains = [_chain(alt, wide) for alt in alternatives]
        for j, name in enumerate(names):
            nr = table.get(name)
            if nr is None:
                unknown.append(UnknownSyscall(f"{at}.names[{j}]", name, abi))
                continue
            largest = nr if largest is None else max(largest, nr)
            if action == default or nr in uncond:
                continue
            for chain in chains:
                if not chain:
                    uncond[nr] = action  # overrides the syscall's conditional rules
                    cond.pop(nr, None)
                    break
                _add_conditional(cond.setdefault(nr, []), (chain, action, at))
    return Resolved(uncond, cond, largest)


def _add_conditional(rules: list[Rule], new: Rule) -> None:
    for chain, action, path in rules:
        if chain == new[0]:
            if action != new[1]:
                raise ConfigError(f"same conditions as {path}, different action", obj=new[2])
            return
    rules.append(new)
