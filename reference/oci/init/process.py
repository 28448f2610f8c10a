"""The last steps before execve: the process's limits, user, capabilities, seccomp, program.

Order (after runc's finalizeNamespace and standard_init): rlimits and oomScoreAdj while still
root with every capability; personality; the bounding set is reduced; the user is switched with
PR_SET_KEEPCAPS so the permitted set survives; cwd (tried as root first, then as the user, as
runc does); the capability sets; no_new_privs; seccomp last, so that the filter has as few of
the runtime's own syscalls to allow as possible. (Without no_new_privs, loading a filter needs
CAP_SYS_ADMIN, so it has to come before the capabilities are dropped, as in runc.)
"""

from __future__ import annotations

import os
import resource  # here, not lazily: after pivot_root the host's Python library is out of reach

from reference.errors import ConfigError, KernelError, NotFoundError, RefError, UnsupportedError
from reference.linux.syscall import (
    PERSONALITY_DOMAINS,
    PR_SET_KEEPCAPS,
    RLIM_INFINITY,
    RLIMITS,
    SECCOMP_FILTER_FLAG_LOG,
    SECCOMP_FILTER_FLAG_SPEC_ALLOW,
    SECCOMP_FILTER_FLAG_TSYNC,
    SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
    Syscall,
)
from reference.oci.init import caps
from reference.oci.init.hostio import InitIO
from reference.oci.spec import Linux, Process, Seccomp

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

_SECCOMP_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": SECCOMP_FILTER_FLAG_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": SECCOMP_FILTER_FLAG_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": SECCOMP_FILTER_FLAG_SPEC_ALLOW,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
}


class ExecError(NotFoundError):
    """The program to run is missing or not executable; shells use 127 (126: not executable)."""

    exit_code = 127


def set_rlimits(sc: Syscall, proc: Process) -> None:
    for i, rl in enumerate(proc.rlimits):
        num = RLIMITS[rl.type]
        _, host_hard = resource.getrlimit(num)
        host = RLIM_INFINITY if host_hard == resource.RLIM_INFINITY else host_hard
        try:
            sc.setrlimit(num, rl.soft, rl.hard)
        except KernelError as e:
            if e.errno == 1 and rl.hard > host:  # EPERM
                # Raising a hard limit needs CAP_SYS_RESOURCE, which this host does not give.
                raise ConfigError(
                    f"{rl.type} hard limit {rl.hard} exceeds the runtime's own hard limit {host} "
                    "(raising it needs CAP_SYS_RESOURCE)",
                    obj=f"process.rlimits[{i}]",
                ) from None
            raise


def set_oom_score_adj(io: InitIO, proc: Process) -> None:
    if proc.oom_score_adj is None:
        return
    try:
        io.write_file("/proc/self/oom_score_adj", str(proc.oom_score_adj))
    except KernelError as e:
        raise ConfigError(
            f"cannot set it ({os.strerror(e.errno)})", obj="process.oomScoreAdj"
        ) from None


def set_personality(sc: Syscall, linux: Linux) -> None:
    if linux.personality is not None:
        sc.personality(PERSONALITY_DOMAINS[linux.personality.domain])


def switch_user(sc: Syscall, proc: Process, *, setgroups: bool = True) -> None:
    """setgroups, setresgid, setresuid, keeping the permitted capabilities across the switch."""
    user = proc.user
    sc.prctl(PR_SET_KEEPCAPS, 1)
    if setgroups:
        sc.setgroups(list(user.additional_gids))
    sc.setresgid(user.gid, user.gid, user.gid)
    sc.setresuid(user.uid, user.uid, user.uid)
    sc.prctl(PR_SET_KEEPCAPS, 0)


def process_env(proc: Process) -> list[str]:
    """The environment, with HOME from the container's /etc/passwd when the spec has none
    (runc does the same; after pivot_root, so it is the image's passwd)."""
    env = list(proc.env)
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={_home(proc.user.uid)}")
    return env


def _home(uid: int) -> str:
    try:
        with open("/etc/passwd", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def look_path(name: str, env: list[str]) -> str:
    """Go's exec.LookPath in the container: `name` itself if it has a slash, else the first
    executable `dir/name` along PATH; errors worded as runc's (Docker matches on them)."""
    if "/" in name:
        try:
            st = os.stat(name)
        except OSError as e:
            reason = os.strerror(e.errno or 0).lower()
            raise ExecError(f'exec: "{name}": stat {name}: {reason}') from None
        if not os.access(name, os.X_OK) or os.path.isdir(name) or not st.st_mode & 0o111:
            err = ExecError(f'exec: "{name}": permission denied')
            err.exit_code = 126
            raise err
        return name
    path = next((e[5:] for e in reversed(env) if e.startswith("PATH=")), "")
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise ExecError(f'exec: "{name}": executable file not found in $PATH')


def seccomp_compiler() -> Callable[[Seccomp], object]:
    """reference.oci.seccomp.compile_filter, if this build has it (imported by name: it is
    optional, and must be imported before pivot_root, see container.preload)."""
    # __import__ rather than importlib.import_module: importlib adds warnings to the import.
    module = __import__("reference.oci.seccomp", fromlist=["compile_filter"])
    compiler: Callable[[Seccomp], object] = module.compile_filter
    return compiler


def load_seccomp(sc: Syscall, seccomp: Seccomp | None) -> None:
    if seccomp is None:
        return
    try:
        compile_filter = seccomp_compiler()
    except (ImportError, AttributeError):
        if not seccomp.syscalls and seccomp.default_action == "SCMP_ACT_ALLOW":
            return  # an empty allow-all profile filters nothing: nothing to load
        raise UnsupportedError(
            "seccomp filters are not implemented in this build (no reference.oci.seccomp)",
            obj="linux.seccomp",
        ) from None
    program = compile_filter(seccomp)
    if not isinstance(program, bytes):
        raise RefError("seccomp compiler returned no program", obj="linux.seccomp")
    flags = 0
    for name in seccomp.flags:
        flags |= _SECCOMP_FLAGS.get(name, 0)
    sc.seccomp_set_mode_filter(program, flags)


def finalize(
    sc: Syscall,
    io: InitIO,
    proc: Process,
    linux: Linux,
    *,
    setgroups: bool = True,
) -> tuple[str, list[str]]:
    """Everything from rlimits to seccomp; returns (program path, environment) for execve."""
    set_rlimits(sc, proc)
    set_oom_score_adj(io, proc)
    set_personality(sc, linux)
    last = caps.last_cap()
    sets = caps.compute(proc.capabilities, caps.host_bounding(sc, last))
    if not proc.no_new_privileges:
        load_seccomp(sc, linux.seccomp)
    caps.drop_bounding(sc, sets, last)
    cwd_done = _try_chdir(io, proc.cwd)
    switch_user(sc, proc, setgroups=setgroups)
    if not cwd_done:
        try:
            io.chdir(proc.cwd)
        except KernelError as e:
            raise ConfigError(
                f"cannot change to {proc.cwd} ({os.strerror(e.errno)})", obj="process.cwd"
            ) from None
    caps.apply(sc, sets, last)
    env = process_env(proc)
    program = look_path(proc.args[0], env)
    if proc.no_new_privileges:
        sc.set_no_new_privs()
        load_seccomp(sc, linux.seccomp)
    return program, env


def _try_chdir(io: InitIO, cwd: str) -> bool:
    try:
        io.chdir(cwd)
    except KernelError:
        return False
    return True
