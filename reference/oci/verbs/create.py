"""`refrun create [--bundle DIR] [--pid-file F] [--console-socket S] [--no-pivot] ID`.

Builds the container up to the point where only the user's program is missing: the init waits
on the exec fifo until `refrun start`. Any failure, in refrun or in the forked init, leaves
nothing behind: the processes are killed and reaped, the cgroup removed, the state directory
deleted, and the error (naming the spec field or path) is what `create` prints.
"""

from __future__ import annotations

import os

from reference.errors import ConfigError, RefError
from reference.oci import (
    args,
    cgroup_extra,
    fastjson,
    hooks,
    launch,
    lifecycle,
    runlog,
    store,
    sync,
)
from reference.oci.spec import Spec, load_json, parse_spec
from reference.oci.validate import validate

TYPE_CHECKING = False
if TYPE_CHECKING:
    from reference.cgroups.manager import CgroupManager
    from reference.cgroups.resources import DeviceType, Resources

FLAGS = args.flags(
    ("--bundle|-b", "bundle", args.VALUE),
    ("--pid-file", "pid_file", args.VALUE),
    ("--console-socket", "console_socket", args.VALUE),
    ("--no-pivot", "no_pivot", args.BOOL),
    ("--no-new-keyring", "no_new_keyring", args.BOOL),
    ("--preserve-fds", "preserve_fds", args.VALUE),
    ("--pidfd-socket", "pidfd_socket", args.VALUE),
)


class CreateOptions:
    __slots__ = ("bundle", "console_socket", "no_pivot", "pid_file", "preserve_fds")

    def __init__(
        self,
        bundle: str = ".",
        pid_file: str = "",
        console_socket: str = "",
        no_pivot: bool = False,
        preserve_fds: int = 0,
    ) -> None:
        self.bundle = bundle
        self.preserve_fds = preserve_fds
        self.pid_file = pid_file
        self.console_socket = console_socket
        self.no_pivot = no_pivot

    @classmethod
    def from_opts(cls, opts: dict[str, object]) -> CreateOptions:
        if "pidfd_socket" in opts:
            from reference.errors import UnsupportedError

            raise UnsupportedError("not supported", obj="--pidfd-socket")
        return cls(
            bundle=args.string(opts, "bundle", "."),
            pid_file=args.string(opts, "pid_file"),
            console_socket=args.string(opts, "console_socket"),
            no_pivot=bool(opts.get("no_pivot")),
            preserve_fds=preserve_fds(opts),
        )


def preserve_fds(opts: dict[str, object]) -> int:
    count = args.integer(opts, "preserve_fds", "--preserve-fds") or 0
    if count < 0:
        raise ConfigError("must not be negative", obj="--preserve-fds")
    return count


def main(g: runlog.Globals, verb: str, argv: list[str]) -> int:
    opts, positional = args.parse(argv, FLAGS)
    create(g, args.one_id(positional, verb), CreateOptions.from_opts(opts))
    return 0


def load(bundle: str) -> tuple[Spec, dict[str, object]]:
    """The bundle's spec, validated, and its raw JSON (kept for hooks and the state copy).
    The file is read and decoded once; parse_spec copies what it keeps of the raw JSON."""
    raw = load_json(os.path.join(bundle, "config.json"))
    spec = parse_spec(raw)
    assert isinstance(raw, dict)  # parse_spec refuses anything else
    validate(spec, bundle)
    if spec.linux.namespace("mount") is None:
        # Without its own mount namespace the rootfs setup would change the host's mounts.
        raise ConfigError("refrun needs a mount namespace", obj="linux.namespaces")
    return spec, raw


def create(g: runlog.Globals, cid: str, o: CreateOptions) -> store.Record:
    bundle = os.path.abspath(o.bundle)
    directory = store.container_dir(g, cid)
    runlog.debug(g, "create: imports done")
    spec, raw = load(bundle)
    runlog.debug(g, "create: spec loaded and validated")
    assert spec.process is not None
    assert spec.root is not None
    if spec.process.terminal and not o.console_socket:
        raise ConfigError("a terminal needs --console-socket", obj="process.terminal")
    os.makedirs(g.root, 0o700, exist_ok=True)
    try:
        os.mkdir(directory, 0o711)  # the atomic claim of the id
    except FileExistsError:
        existing = store.load(g, cid)
        lifecycle.check_transition("create", existing.status() if existing else "creating", cid)
    rec = store.Record(
        directory,
        {
            "ociVersion": spec.oci_version,
            "id": cid,
            "pid": 0,
            "bundle": bundle,
            "rootfs": os.path.join(bundle, spec.root.path),
            "created": runlog.rfc3339(nanos=True),
            "creator": os.getpid(),
            "creator_start": (store.proc_stat(os.getpid()) or ("", 0))[1],
            "annotations": dict(spec.annotations),
            "hooks": raw.get("hooks") or {},
        },
    )
    starter = _Starter(g, rec, spec, raw, o)
    try:
        rec.save()
        starter.run()
    except BaseException:
        starter.cleanup()
        raise
    return rec


class _Starter:
    """The parent's half of the handshake with the forked namespace stage and init."""

    def __init__(
        self,
        g: runlog.Globals,
        rec: store.Record,
        spec: Spec,
        raw: dict[str, object],
        o: CreateOptions,
    ) -> None:
        self.g, self.rec, self.spec, self.raw, self.o = g, rec, spec, raw, o
        self.a_pid = 0
        self.b_pid = 0
        self.manager: CgroupManager | None = None
        self.extra: dict[str, str] = {}
        self.fds: list[int] = []

    def run(self) -> None:
        from reference.cgroups import warmup

        spec, rec = self.spec, self.rec
        assert spec.process is not None
        assert spec.root is not None
        console_fd = (
            launch.connect_console(self.o.console_socket) if spec.process.terminal else None
        )
        if console_fd is not None:
            self.fds.append(console_fd)
        state_fd = os.open(rec.dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.fds.append(state_fd)
        joins = [(ns.type, ns.path) for ns in spec.linux.namespaces if ns.path]
        new = [ns.type for ns in spec.linux.namespaces if not ns.path]
        raw_hooks = self.raw.get("hooks")
        parent, child = sync.pipe_pair()
        self.fds += [parent.rfd, parent.wfd]

        def stage_one() -> None:
            # The init's modules are imported here, in the child, while the parent writes the
            # state and sets up the cgroup: on two CPUs that takes them off the critical path.
            # They must be loaded before pivot_root (see container.preload), so before the
            # init is forked.
            from reference.linux.libc import LinuxSyscall
            from reference.oci.init.container import InitPlan, container_init, preload
            from reference.oci.init.hostio import HostIO
            from reference.oci.init.namespaces import enter

            plan = InitPlan(
                spec,
                bundle=rec.bundle,
                rootfs=str(rec.data["rootfs"]),
                new_ns=frozenset(new),
                userns=spec.linux.namespace("user") is not None,
                state_dir_fd=state_fd,
                no_pivot=self.o.no_pivot,
                console_fd=console_fd,
                raw_hooks=raw_hooks if isinstance(raw_hooks, dict) else {},
                hook_state=self.state("creating"),
                preserve_fds=self.o.preserve_fds,
            )
            preload(spec, plan.raw_hooks)
            sc = LinuxSyscall()

            def init() -> None:  # the container's init (stage two)
                launch.exit_on_signals()
                child.expect("pid-ok")
                container_init(sc, HostIO(), plan, child)

            child.expect("go")
            enter(sc, child, joins, new)
            pid = launch.fork(init, child, parent)
            child.send("pid", pid=pid)

        # Stage one is forked as early as it can be: it needs nothing from the parent's work
        # below until "go" (config.json, the exec fifo and the cgroup are all in place by
        # then), so that work and stage one's imports overlap.
        # Not after warmup.wait(): the grace period that thread waits for passes as well while
        # stage one imports; only apply() below needs it to be over.
        # Before the fork: it loads the C library, which stage one then inherits instead of
        # loading it again (and the init stage one forks must find us a subreaper when stage one
        # exits).
        launch.become_subreaper()
        self.a_pid = launch.fork(stage_one, child, parent)
        child.close()
        runlog.debug(self.g, "create: namespace stage forked")
        from reference.cgroups.factory import mounts_of, new_manager

        with open(rec.path(store.CONFIG), "w", encoding="utf-8") as f:
            f.write(fastjson.dumps(self.raw))
        os.mkfifo(rec.path(store.FIFO), 0o622)
        os.chmod(rec.path(store.FIFO), 0o622)  # mkfifo honours the umask; the init may be non-root
        mounts = mounts_of(None)  # parsed once, for the manager and the extra hierarchies
        manager = new_manager(spec.linux.cgroups_path or rec.id, mounts=mounts)
        self.manager = manager
        resources = _resources(spec)
        cgroup = manager.describe()
        cgroup["extra"] = self.extra = cgroup_extra.extra_dirs(manager.path, mounts)
        rec.data["cgroup"] = cgroup
        rec.save()
        runlog.debug(self.g, "create: state, exec fifo and cgroup manager ready")
        manager.apply(self.a_pid)  # before it unshares: a new cgroup namespace roots here
        cgroup_extra.join(self.extra, self.a_pid)
        manager.set(resources)
        warmup.wait()  # done by now (apply shared its grace period): one thread from here on
        runlog.debug(self.g, f"create: cgroup {manager.path} made, joined and limited")
        try:  # noqa: SIM105  (contextlib costs a millisecond to import)
            parent.send("go")
        except BrokenPipeError:
            pass  # stage one died before it got there: its error (or EOF) is read next
        self._handshake(parent)
        runlog.debug(self.g, f"create: init {self.b_pid} waits on the exec fifo")
        st = store.proc_stat(self.b_pid)
        rec.data.update(pid=self.b_pid, start_time=st[1] if st else 0)
        rec.data.pop("creator", None)
        rec.save()
        if self.o.pid_file:
            write_pid_file(self.o.pid_file, self.b_pid)
        self._close_fds()

    def _handshake(self, ch: sync.Channel) -> None:
        while True:
            msg = ch.recv()
            if msg is None:
                status = launch.reap(self.a_pid) if self.a_pid else None
                self.a_pid = 0
                raise RefError(f"container init exited before it was ready (status {status})",
                               obj=self.rec.id)  # fmt: skip
            kind = msg.get("t")
            if kind == "error":
                raise sync.decode_error(msg)
            if kind == "userns":
                linux = self.spec.linux
                launch.write_id_maps(self.a_pid, linux.uid_mappings, linux.gid_mappings)
                ch.send("maps")
            elif kind == "pid":
                pid = msg.get("pid")
                self.b_pid = pid if isinstance(pid, int) else 0
                launch.reap(self.a_pid)  # stage one is done; the init is now our child
                self.a_pid = 0
                ch.send("pid-ok")
            elif kind == "hooks":
                state = self.state("creating")
                for stage in ("prestart", "createRuntime"):
                    hooks.run_hooks(stage, self.rec.hooks(stage), state)
                ch.send("hooks-done")
            elif kind == "ready":
                return

    def state(self, status: str) -> dict[str, object]:
        return hooks.hook_state(
            self.spec.oci_version, self.rec.id, status, self.b_pid, self.rec.bundle,
            dict(self.spec.annotations),
        )  # fmt: skip

    def _close_fds(self) -> None:
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                continue
        self.fds = []

    def cleanup(self) -> None:
        """Undo a failed create: processes, cgroup, state directory (in that order)."""
        if self.b_pid:
            launch.kill_quiet(self.b_pid, 9)
        if self.a_pid:
            launch.reap(self.a_pid, kill=True)
        if self.b_pid:
            launch.reap(self.b_pid, kill=True)
        self._close_fds()
        if self.manager is not None:
            try:
                self.manager.destroy()
                cgroup_extra.remove(self.extra)
            except RefError as e:
                runlog.warn(self.g, f"cleanup: {e}")
        self.rec.remove()


def _resources(spec: Spec) -> Resources:
    """linux.resources plus runc's always-allowed devices and the spec's own device nodes."""
    from reference.cgroups.resources import DeviceRule, Resources
    from reference.oci.init.devices import ALLOWED_DEVICES
    from reference.records import replace

    res = Resources.from_spec(spec.linux.resources)
    extra = [DeviceRule(True, t, major, minor, acc) for t, major, minor, acc in ALLOWED_DEVICES]
    for dev in spec.linux.devices:
        if dev.type in ("c", "u", "b"):
            kind: DeviceType = "b" if dev.type == "b" else "c"
            extra.append(DeviceRule(True, kind, dev.major, dev.minor, "rwm"))
    return replace(res, devices=(*res.devices, *extra))


def write_pid_file(path: str, pid: int) -> None:
    """Atomically, as runc: a reader never sees an empty or partial pid file."""
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.tmp")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.replace(tmp, path)
