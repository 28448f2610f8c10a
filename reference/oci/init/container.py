"""The container's init, from a fresh mount namespace to execve of the user's program.

`container_init` is the whole sequence, in the order of runc's standard_init_linux.go:
session, loopback, rootfs propagation and self-bind, the spec's mounts, /dev, the parent's
prestart/createRuntime hooks, createContainer hooks, pivot_root, console, read-only tmpfs
remounts, hostname, domainname, sysctls (before the read-only paths: /proc/sys is one of them),
read-only and masked paths, a read-only root, umask, then the process (rlimits ... seccomp, see
`process.finalize`), "ready" to the parent, the exec fifo wait, startContainer hooks, execve.
`exec_init` is the same tail for `refrun exec`, in namespaces that already exist.
"""

from __future__ import annotations

import os

from reference.linux.syscall import Syscall
from reference.oci import hooks
from reference.oci.init import devices, mounts, process, rootfs
from reference.oci.init.hostio import InitIO
from reference.oci.init.paths import make_dir, secure_join
from reference.oci.spec import Linux, Process, Spec
from reference.oci.sync import Channel


class InitPlan:
    """What the parent decided for the init; the fork carries it across."""

    __slots__ = (
        "bundle",
        "console_fd",
        "hook_state",
        "new_ns",
        "no_pivot",
        "parent_hooks",
        "preserve_fds",
        "raw_hooks",
        "rootfs",
        "spec",
        "state_dir_fd",
        "userns",
    )

    def __init__(
        self,
        spec: Spec,
        *,
        bundle: str,
        rootfs: str,
        new_ns: frozenset[str],
        userns: bool,
        state_dir_fd: int,
        no_pivot: bool = False,
        console_fd: int | None = None,
        raw_hooks: dict[str, list[dict[str, object]]] | None = None,
        hook_state: dict[str, object] | None = None,
        preserve_fds: int = 0,
    ) -> None:
        self.spec = spec
        self.bundle = bundle
        self.rootfs = rootfs
        self.new_ns = new_ns
        self.userns = userns  # in a user namespace (new or joined): no mknod, bind the nodes
        self.state_dir_fd = state_dir_fd
        self.no_pivot = no_pivot
        self.console_fd = console_fd
        self.preserve_fds = preserve_fds
        self.raw_hooks = raw_hooks or {}
        self.hook_state = hook_state or {}
        self.parent_hooks = bool(
            self.raw_hooks.get("prestart") or self.raw_hooks.get("createRuntime")
        )


def preload(spec: Spec, raw_hooks: dict[str, list[dict[str, object]]]) -> None:
    """Import now what the init needs after it leaves the host's filesystem.

    After pivot_root (or, for exec, setns into the container's mount namespace) the host's
    Python library is out of reach, so a lazy import there fails. The parent calls this before
    it forks: the children inherit the loaded modules.
    """
    import struct  # noqa: F401  (the syscall layer packs seccomp programs with it)

    from reference.linux import libc

    libc._libc()  # loads _ctypes and the C library
    if spec.process is not None and spec.process.terminal:
        import reference.oci.init.console  # noqa: F401
    if any(raw_hooks.get(stage) for stage in ("createContainer", "startContainer")):
        import fcntl  # noqa: F401  (what hooks.spawn imports, for hooks run in the container)
        import select  # noqa: F401
    if spec.linux.seccomp is not None:
        _try_seccomp_compiler()


def _try_seccomp_compiler() -> None:
    try:
        process.seccomp_compiler()
    except (ImportError, AttributeError):
        return  # load_seccomp reports it, naming the field


def _run_hooks(plan: InitPlan, stage: str, status: str) -> None:
    entries = plan.raw_hooks.get(stage) or []
    if entries:
        hooks.run_hooks(stage, entries, {**plan.hook_state, "status": status, "pid": os.getpid()})


def sysctl_path(key: str) -> str:
    # "net.ipv4.ip_forward" and "net/ipv4/ip_forward" are both sysctl(8) spellings.
    return "/proc/sys/" + (key if "/" in key.split(".", 1)[0] else key.replace(".", "/"))


def container_init(sc: Syscall, io: InitIO, plan: InitPlan, ch: Channel) -> None:
    """Build the container and exec its process (returns only when `io` is a fake)."""
    spec, linux = plan.spec, plan.spec.linux
    proc = spec.process
    assert proc is not None  # validated by create
    assert spec.root is not None
    io.setsid()
    io.umask(0)  # device nodes and mount points get exactly the modes asked for
    if "network" in plan.new_ns:
        io.loopback_up()
    rootfs.prepare_root(sc, plan.rootfs, linux.rootfs_propagation)
    ctx = mounts.MountContext(
        plan.rootfs,
        plan.bundle,
        # A fresh sysfs shows the container's own network namespace, made or joined by path
        # (an engine's sandbox); only with the host's is /sys bound from the host (as runc).
        new_netns=linux.namespace("network") is not None,
        new_cgroupns="cgroup" in plan.new_ns,
    )
    mounts.mount_all(sc, spec.mounts, ctx)
    if devices.needs_dev_setup(spec):
        devices.setup_dev(sc, io, plan.rootfs, spec, bind=plan.userns)
    if plan.parent_hooks:
        ch.send("hooks")  # prestart and createRuntime run in the runtime's namespaces
        ch.expect("hooks-done")
    _run_hooks(plan, "createContainer", "creating")
    make_dir(secure_join(plan.rootfs, proc.cwd))  # runc creates a missing cwd
    if plan.no_pivot:
        rootfs.move_root(sc, io, plan.rootfs)
    else:
        rootfs.pivot(sc, io, plan.rootfs)
    rootfs.apply_propagation(sc, linux.rootfs_propagation)
    if proc.terminal and plan.console_fd is not None:
        from reference.oci.init.console import setup_console

        setup_console(sc, plan.console_fd, proc.console_size)
    mounts.finish_readonly(sc, ctx)
    if spec.hostname:
        sc.sethostname(spec.hostname)
    if spec.domainname:
        sc.setdomainname(spec.domainname)
    for key, value in linux.sysctl.items():
        io.write_file(sysctl_path(key), value)
    for path in linux.readonly_paths:
        rootfs.readonly_path(sc, path)
    for path in linux.masked_paths:
        rootfs.mask_path(sc, path)
    if spec.root.readonly:
        rootfs.readonly_root(sc)
    io.umask(proc.user.umask if proc.user.umask is not None else 0o022)
    program, env = process.finalize(sc, io, proc, linux)
    ch.send("ready")
    io.exec_fifo(plan.state_dir_fd)
    _run_hooks(plan, "startContainer", "created")
    io.close_fds(3 + plan.preserve_fds)
    io.execve(program, list(proc.args), env)


def exec_init(
    sc: Syscall,
    io: InitIO,
    proc: Process,
    linux: Linux,
    console_fd: int | None,
    preserve_fds: int = 0,
) -> None:
    """`refrun exec`'s process, already in the container's namespaces and cgroup."""
    io.setsid()
    if proc.terminal and console_fd is not None:
        from reference.oci.init.console import setup_console

        setup_console(sc, console_fd, proc.console_size, mount_console=False)
    program, env = process.finalize(sc, io, proc, linux)
    io.close_fds(3 + preserve_fds)
    io.execve(program, list(proc.args), env)
