"""`refrun exec [flags] ID [COMMAND [ARGS...]]`: run another process in a container.

The process is the container's own `process` with what the flags change (runc's rules), or a
whole process object from `--process FILE`. It joins the init's namespaces (through
/proc/<init>/ns, user namespace first) and the container's cgroup, then goes through the same
final steps as the init (rlimits, user, capabilities, seccomp). In the foreground refrun waits
for it and exits with its status; -d returns once it runs.
"""

from __future__ import annotations

import os

from reference.errors import ConfigError, RefError
from reference.oci import args, fastjson, launch, lifecycle, runlog, store, sync
from reference.oci.init.container import exec_init, preload
from reference.oci.init.hostio import HostIO
from reference.oci.init.namespaces import enter
from reference.oci.spec import Capabilities, Process, User, load_spec, parse_process
from reference.oci.validate import validate_process
from reference.records import replace

FLAGS = args.flags(
    ("--process|-p", "process", args.VALUE),
    ("--detach|-d", "detach", args.BOOL),
    ("--pid-file", "pid_file", args.VALUE),
    ("--console-socket", "console_socket", args.VALUE),
    ("--cwd", "cwd", args.VALUE),
    ("--env|-e", "env", args.MULTI),
    ("--tty|-t", "tty", args.BOOL),
    ("--user|-u", "user", args.VALUE),
    ("--additional-gids|-g", "gids", args.MULTI),
    ("--cap|-c", "cap", args.MULTI),
    ("--no-new-privs", "nnp", args.BOOL),
    ("--preserve-fds", "preserve_fds", args.VALUE),
    ("--process-label", "label", args.VALUE),
    ("--apparmor", "apparmor", args.VALUE),
    ("--cgroup", "cgroup", args.MULTI),
    ("--ignore-paused", "ignore_paused", args.BOOL),
)

# OCI namespace type -> /proc/PID/ns entry
_NS_FILES = {"user": "user", "ipc": "ipc", "uts": "uts", "network": "net", "pid": "pid",
             "cgroup": "cgroup", "mount": "mnt"}  # fmt: skip


def main(g: runlog.Globals, verb: str, argv: list[str]) -> int:
    opts, positional = args.parse(argv, FLAGS, stop_at_positional=True)
    if not positional:
        raise ConfigError("usage: exec [flags] ID [COMMAND [ARGS...]]", obj=verb)
    cid, command = positional[0], positional[1:]
    rec = store.require(g, cid)
    lifecycle.check_transition("exec", rec.status(), cid)
    config = load_spec(rec.path(store.CONFIG), create=False)
    proc = build_process(opts, command, config.process)
    validate_process(proc)
    if proc.terminal and not args.string(opts, "console_socket"):
        raise ConfigError("a terminal needs --console-socket", obj="--tty")
    joins = [
        (ns.type, f"/proc/{rec.pid}/ns/{_NS_FILES[ns.type]}")
        for ns in config.linux.namespaces
        if ns.type in _NS_FILES
    ]
    manager = rec.manager()
    from reference.oci.verbs.create import preserve_fds

    preserve = preserve_fds(opts)
    console_fd = (
        launch.connect_console(args.string(opts, "console_socket")) if proc.terminal else None
    )
    preload(config, {})
    launch.become_subreaper()
    parent, child = sync.pipe_pair()
    from reference.linux.libc import LinuxSyscall

    sc = LinuxSyscall()

    def process() -> None:
        child.expect("pid-ok")
        exec_init(sc, HostIO(), proc, config.linux, console_fd, preserve)

    def stage_one() -> None:
        child.expect("go")
        enter(sc, None, joins, [])
        child.send("pid", pid=launch.fork(process, child, parent))

    # The CLI's warm-up thread may still wait in the kernel: forking now is safe (see
    # reference/cgroups/warmup.py), and apply() below shares the grace period it waits for.
    a_pid = launch.fork(stage_one, child, parent)
    child.close()
    if console_fd is not None:
        os.close(console_fd)
    b_pid = 0
    try:
        manager.apply(a_pid)
        extra = rec.cgroup().get("extra")
        if isinstance(extra, dict) and extra:
            from reference.oci import cgroup_extra

            cgroup_extra.join({str(k): str(v) for k, v in extra.items()}, a_pid)
        from reference.cgroups import warmup

        warmup.wait()  # done by now: one thread from here on
        parent.send("go")
        b_pid = _pid(parent.expect("pid"))
        launch.reap(a_pid)
        a_pid = 0
        parent.send("pid-ok")
        msg = parent.recv()  # EOF: the pipe closed on execve
        if msg is not None:
            raise (
                sync.decode_error(msg)
                if msg.get("t") == "error"
                else RefError(f"unexpected message {msg!r}", obj=cid)
            )
    except BaseException:
        for pid in (a_pid, b_pid):
            if pid:
                launch.reap(pid, kill=True)
        raise
    finally:
        parent.close()
    if args.string(opts, "pid_file"):
        from reference.oci.verbs.create import write_pid_file

        write_pid_file(args.string(opts, "pid_file"), b_pid)
    if opts.get("detach"):
        return 0
    return launch.wait_forwarding(b_pid)


def _pid(msg: dict[str, object]) -> int:
    pid = msg.get("pid")
    if not isinstance(pid, int):
        raise RefError(f"bad pid message {msg!r}")
    return pid


def build_process(opts: dict[str, object], command: list[str], base: Process | None) -> Process:
    """runc's rules: --process replaces everything; otherwise the container's process with
    the command, env additions (a later KEY= wins), cwd, user, gids, caps, tty, nnp."""
    if "process" in opts:
        source = args.string(opts, "process")
        try:
            with open(source, encoding="utf-8") as f:
                data = fastjson.loads(f.read())
        except OSError as e:
            raise ConfigError(f"cannot read process file ({e.strerror})", obj=source) from None
        except ValueError as e:
            raise ConfigError(f"malformed JSON: {e}", obj=source) from None
        return parse_process(data)
    if not command:
        raise ConfigError("a command is required (or --process FILE)", obj="exec")
    if base is None:
        raise ConfigError("the container's config has no process to start from", obj="process")
    env = {var.split("=", 1)[0]: var for var in base.env}
    for var in args.strings(opts, "env"):
        env[var.split("=", 1)[0]] = var
    user = base.user
    if "user" in opts:
        uid, _, gid = args.string(opts, "user").partition(":")
        try:
            user = User(uid=int(uid), gid=int(gid) if gid else 0)
        except ValueError:
            raise ConfigError("expected UID[:GID] (numbers)", obj="--user") from None
    if "gids" in opts:
        try:
            gids = tuple(int(x) for x in args.strings(opts, "gids"))
        except ValueError:
            raise ConfigError("expected numbers", obj="--additional-gids") from None
        user = replace(user, additional_gids=gids)
    caps = base.capabilities
    extra = tuple(args.strings(opts, "cap"))
    if extra:
        caps = caps or Capabilities()
        caps = Capabilities(
            bounding=caps.bounding + extra,
            effective=caps.effective + extra,
            inheritable=caps.inheritable,
            permitted=caps.permitted + extra,
            ambient=caps.ambient,
        )
    return replace(
        base,
        args=tuple(command),
        env=tuple(env.values()),
        cwd=args.string(opts, "cwd") or base.cwd,
        terminal=bool(opts.get("tty")),
        user=user,
        capabilities=caps,
        no_new_privileges=base.no_new_privileges or bool(opts.get("nnp")),
    )
