"""Semantic checks of a parsed spec, before anything is created.

Kept apart from parsing (as runc keeps `configs/validate` apart from `specconv`) so that a
config that is well-typed but impossible fails with one clear error naming the field, instead
of half a container and a kernel errno. Checks that need the host (paths exist, which netns we
are in) are here too; checks that need root or a cgroup are left to the code that acts.
"""

from __future__ import annotations

import os

from reference.errors import ConfigError
from reference.oci import fastjson

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; see reference/records.py
if TYPE_CHECKING:
    from reference.oci.spec import Hooks, Linux, Process, Seccomp, Spec

NAMESPACE_TYPES = frozenset({"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"})

# Indexed by capability number (linux/capability.h), so `CAPABILITIES.index(name)` is the bit.
CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
    "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON",
    "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)  # fmt: skip

# Indexed by resource number (asm-generic/resource.h), for setrlimit/prlimit.
RLIMITS: tuple[str, ...] = (
    "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS",
    "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
)  # fmt: skip

ROOTFS_PROPAGATIONS = frozenset(
    {"private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable"}
)

DEVICE_TYPES = frozenset({"c", "b", "u", "p"})

# libseccomp names the spec lists (v2.5), plus LoongArch from libseccomp 2.6.
SECCOMP_ACTIONS = frozenset(
    {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
     "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"}
)  # fmt: skip
SECCOMP_ARCHES = frozenset(
    {"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
     "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
     "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
     "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC",
     "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64"}
)  # fmt: skip
SECCOMP_FLAGS = frozenset(
    {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
     "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"}
)  # fmt: skip
SECCOMP_OPS = frozenset(
    {"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
     "SCMP_CMP_MASKED_EQ"}
)  # fmt: skip
# Only these actions carry an errno; the spec requires an error for errnoRet on any other.
_ERRNO_ACTIONS = frozenset({"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"})

# System V IPC sysctls that are per ipc namespace (fs.mqueue.* is matched by prefix).
_IPC_SYSCTLS = frozenset(
    {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
     "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}
)  # fmt: skip

# SemVer as ^(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$ matches it, checked by
# hand: `re` costs ~10 ms to import, more than all the rest of validation, and Docker's configs
# say "1.0.2-dev", so a fast path for plain "1.x.y" alone does not avoid it.
_SEMVER_TAG = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.-")


def semver_major(version: str) -> str | None:
    """The major version of a SemVer string, or None if it is not one (see _SEMVER_TAG)."""
    text = version[:-1] if version.endswith("\n") else version  # `$` matches before a last \n
    text, plus, build = text.partition("+")
    if plus and not (build and set(build) <= _SEMVER_TAG):
        return None
    text, dash, pre = text.partition("-")
    if dash and not (pre and set(pre) <= _SEMVER_TAG):
        return None
    parts = text.split(".")
    if len(parts) != 3 or not all(p.isdecimal() for p in parts):
        return None
    return parts[0]


def validate(spec: Spec, bundle: str | os.PathLike[str]) -> None:
    """Raise ConfigError naming the first field of `spec` that cannot work for a container."""
    _check_version(spec.oci_version)
    if spec.root is None:
        raise ConfigError("missing required field", obj="root")
    if not spec.root.path:
        raise ConfigError("must not be empty", obj="root.path")
    rootfs = _join(os.fspath(bundle), spec.root.path)  # an absolute root.path wins
    if not os.path.isdir(rootfs):
        raise ConfigError(f"rootfs {rootfs} does not exist or is not a directory", obj="root.path")
    if spec.process is not None:
        _check_process(spec.process)
    linux = spec.linux
    _check_namespaces(linux)
    if linux.namespace("uts") is None:
        for name, value in (("hostname", spec.hostname), ("domainname", spec.domainname)):
            if value:
                raise ConfigError(f"cannot set {name} without a private uts namespace", obj=name)
    _check_sysctl(linux, spec.hostname)
    _check_mounts(spec)
    if linux.rootfs_propagation and linux.rootfs_propagation not in ROOTFS_PROPAGATIONS:
        raise ConfigError(
            f"unknown propagation {linux.rootfs_propagation!r}", obj="linux.rootfsPropagation"
        )
    for key, paths in (
        ("maskedPaths", linux.masked_paths),
        ("readonlyPaths", linux.readonly_paths),
    ):
        for i, p in enumerate(paths):
            if not os.path.isabs(p):
                raise ConfigError("path must be absolute", obj=f"linux.{key}[{i}]")
        # Masking happens inside the container's mount table; without one it would hit the host.
        if paths and linux.namespace("mount") is None:
            raise ConfigError(f"{key} needs a private mount namespace", obj=f"linux.{key}")
    _check_devices(linux)
    if linux.seccomp is not None:
        _check_seccomp(linux.seccomp)
    if linux.personality is not None and linux.personality.domain not in ("LINUX", "LINUX32"):
        raise ConfigError(
            f"unknown domain {linux.personality.domain!r}", obj="linux.personality.domain"
        )
    if spec.hooks is not None:
        _check_hooks(spec.hooks)
    for key in spec.annotations:
        if not key:
            raise ConfigError("annotation keys must not be empty", obj="annotations")


def _join(base: str, path: str) -> str:
    """`pathlib.Path(base) / path` as a string (no "." parts, no trailing or doubled "/"),
    without importing pathlib (~10 ms)."""
    joined = path if path.startswith("/") else f"{base}/{path}"
    lead = "//" if joined.startswith("//") and not joined.startswith("///") else "/"
    parts = [p for p in joined.split("/") if p and p != "."]
    if not joined.startswith("/"):
        return "/".join(parts) or "."
    return lead + "/".join(parts)


def _check_mounts(spec: Spec) -> None:
    for i, m in enumerate(spec.mounts):
        if not os.path.isabs(m.destination):
            raise ConfigError("mount destination must be absolute", obj=f"mounts[{i}].destination")
        if ("bind" in m.options or "rbind" in m.options or m.type == "bind") and not m.source:
            raise ConfigError("bind mount needs a source", obj=f"mounts[{i}].source")


def _check_hooks(hooks: Hooks) -> None:
    stages = (
        ("prestart", hooks.prestart),
        ("createRuntime", hooks.create_runtime),
        ("createContainer", hooks.create_container),
        ("startContainer", hooks.start_container),
        ("poststart", hooks.poststart),
        ("poststop", hooks.poststop),
    )
    for stage, entries in stages:
        for i, hook in enumerate(entries):
            if not os.path.isabs(hook.path):
                raise ConfigError("hook path must be absolute", obj=f"hooks.{stage}[{i}].path")
            if hook.timeout is not None and hook.timeout <= 0:
                raise ConfigError("timeout must be > 0", obj=f"hooks.{stage}[{i}].timeout")


def _check_version(version: str) -> None:
    major = semver_major(version)
    if major is None:
        raise ConfigError(f"{version!r} is not a SemVer version", obj="ociVersion")
    # The spec is compatible within a major version only; this runtime implements 1.x.
    if major != "1":
        raise ConfigError(f"unsupported spec version {version} (want 1.x)", obj="ociVersion")


def validate_process(proc: Process) -> None:
    """The checks of `process` alone, for `exec`'s process (a --process file or flags)."""
    _check_process(proc)


def _check_process(proc: Process) -> None:
    if not proc.args:
        raise ConfigError("at least one argument is required", obj="process.args")
    if not os.path.isabs(proc.cwd):
        raise ConfigError("cwd must be an absolute path", obj="process.cwd")
    for i, var in enumerate(proc.env):
        # execve takes NUL-terminated strings, and runc refuses entries without '='.
        if "=" not in var or "\0" in var:
            raise ConfigError("expected KEY=value without NUL", obj=f"process.env[{i}]")
    if proc.capabilities is not None:
        for kind in ("bounding", "effective", "inheritable", "permitted", "ambient"):
            for i, cap in enumerate(getattr(proc.capabilities, kind)):
                if cap not in CAPABILITIES:
                    raise ConfigError(
                        f"unknown capability {cap!r}", obj=f"process.capabilities.{kind}[{i}]"
                    )
    seen: set[str] = set()
    for i, rl in enumerate(proc.rlimits):
        if rl.type not in RLIMITS:
            raise ConfigError(f"unknown rlimit {rl.type!r}", obj=f"process.rlimits[{i}].type")
        if rl.type in seen:
            raise ConfigError(f"duplicate rlimit {rl.type}", obj=f"process.rlimits[{i}].type")
        seen.add(rl.type)
        if rl.soft > rl.hard:
            raise ConfigError(
                f"soft limit {rl.soft} exceeds hard limit {rl.hard}",
                obj=f"process.rlimits[{i}].soft",
            )
    if proc.oom_score_adj is not None and not -1000 <= proc.oom_score_adj <= 1000:
        raise ConfigError("oomScoreAdj must be in [-1000, 1000]", obj="process.oomScoreAdj")


def _check_namespaces(linux: Linux) -> None:
    seen: set[str] = set()
    for i, ns in enumerate(linux.namespaces):
        if ns.type not in NAMESPACE_TYPES:
            raise ConfigError(
                f"unknown namespace type {ns.type!r}", obj=f"linux.namespaces[{i}].type"
            )
        if ns.type in seen:
            raise ConfigError(f"duplicate namespace {ns.type}", obj=f"linux.namespaces[{i}].type")
        seen.add(ns.type)
        if ns.path:
            if not os.path.isabs(ns.path):
                raise ConfigError("path must be absolute", obj=f"linux.namespaces[{i}].path")
            if not os.path.exists(ns.path):
                raise ConfigError(f"{ns.path} does not exist", obj=f"linux.namespaces[{i}].path")
    user = linux.namespace("user")
    if user is None:
        for key, maps in (("uidMappings", linux.uid_mappings), ("gidMappings", linux.gid_mappings)):
            if maps:
                raise ConfigError(f"{key} need a user namespace", obj=f"linux.{key}")
    elif not user.path:
        # A new user namespace without maps leaves every id as nobody and setuid fails.
        for key, maps in (("uidMappings", linux.uid_mappings), ("gidMappings", linux.gid_mappings)):
            if not maps:
                raise ConfigError("a new user namespace needs mappings", obj=f"linux.{key}")
    for key, maps in (("uidMappings", linux.uid_mappings), ("gidMappings", linux.gid_mappings)):
        for i, m in enumerate(maps):
            if m.size == 0:
                raise ConfigError("mapping size must be > 0", obj=f"linux.{key}[{i}].size")


def _check_sysctl(linux: Linux, hostname: str) -> None:
    """Only sysctls that belong to a namespace the container owns; others would change the host."""
    for key in linux.sysctl:
        obj = f"linux.sysctl[{fastjson.dumps(key)}]"
        # sysctl(8) accepts '/' as separator too ("net/ipv4/ip_forward").
        name = key.replace("/", ".") if "/" in key.split(".", 1)[0] else key
        if name in _IPC_SYSCTLS or name.startswith("fs.mqueue."):
            if linux.namespace("ipc") is None:
                raise ConfigError(f"sysctl {name} needs a private ipc namespace", obj=obj)
        elif name.startswith("net."):
            net = linux.namespace("network")
            if net is None or (net.path and _is_host_netns(net.path)):
                raise ConfigError(f"sysctl {name} needs a private network namespace", obj=obj)
        elif name in ("kernel.hostname", "kernel.domainname"):
            if linux.namespace("uts") is None:
                raise ConfigError(f"sysctl {name} needs a private uts namespace", obj=obj)
            if name == "kernel.hostname" and hostname:
                raise ConfigError("sysctl kernel.hostname conflicts with hostname", obj=obj)
        else:
            raise ConfigError(f"sysctl {name} is not namespaced", obj=obj)


def _is_host_netns(path: str) -> bool:
    """Whether `path` is the network namespace this runtime runs in (a sysctl would leak)."""
    try:
        a, b = os.stat("/proc/self/ns/net"), os.stat(path)
    except OSError:
        return False  # a missing path is reported by the namespace check
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _check_devices(linux: Linux) -> None:
    for i, dev in enumerate(linux.devices):
        if dev.type not in DEVICE_TYPES:
            raise ConfigError(f"unknown device type {dev.type!r}", obj=f"linux.devices[{i}].type")
        if not os.path.isabs(dev.path):
            raise ConfigError("device path must be absolute", obj=f"linux.devices[{i}].path")
        if dev.type != "p":
            for part in ("major", "minor"):
                if getattr(dev, part) is None:
                    raise ConfigError(
                        f"{part} is required for type {dev.type}", obj=f"linux.devices[{i}].{part}"
                    )


def _check_seccomp(sc: Seccomp) -> None:
    if sc.default_action not in SECCOMP_ACTIONS:
        raise ConfigError(
            f"unknown action {sc.default_action!r}", obj="linux.seccomp.defaultAction"
        )
    if sc.default_errno_ret is not None and sc.default_action not in _ERRNO_ACTIONS:
        raise ConfigError(
            f"{sc.default_action} takes no errno", obj="linux.seccomp.defaultErrnoRet"
        )
    for key, values, known in (
        ("architectures", sc.architectures, SECCOMP_ARCHES),
        ("flags", sc.flags, SECCOMP_FLAGS),
    ):
        for i, v in enumerate(values):
            if v not in known:
                raise ConfigError(f"unknown value {v!r}", obj=f"linux.seccomp.{key}[{i}]")
    for i, rule in enumerate(sc.syscalls):
        at = f"linux.seccomp.syscalls[{i}]"
        if not rule.names:
            raise ConfigError("at least one syscall name is required", obj=f"{at}.names")
        if rule.action not in SECCOMP_ACTIONS:
            raise ConfigError(f"unknown action {rule.action!r}", obj=f"{at}.action")
        if rule.errno_ret is not None and rule.action not in _ERRNO_ACTIONS:
            raise ConfigError(f"{rule.action} takes no errno", obj=f"{at}.errnoRet")
        for j, arg in enumerate(rule.args):
            if arg.index > 5:  # syscalls have at most six arguments
                raise ConfigError("index must be in [0, 5]", obj=f"{at}.args[{j}].index")
            if arg.op not in SECCOMP_OPS:
                raise ConfigError(f"unknown operator {arg.op!r}", obj=f"{at}.args[{j}].op")
