"""The container init's sequence, run against recording fakes (no root, nothing mounted).

One call list holds the kernel calls (RecordingSyscall) and the host operations (RecordingIO)
in the order the init made them; the tests check that order against runc's, and that a failure
stops the sequence with an error naming the spec field.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from reference.errors import ConfigError, KernelError, RefError
from reference.linux.syscall import (
    CAPS,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    MS_BIND,
    MS_MOVE,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    MS_SLAVE,
    PR_SET_KEEPCAPS,
    RLIMITS,
    cap_mask,
)
from reference.oci import sync
from reference.oci.default import RUNC_DEFAULT_CAPS, default_spec
from reference.oci.init import caps, namespaces, process
from reference.oci.init.container import InitPlan, container_init, exec_init
from reference.oci.init.paths import secure_join
from reference.oci.spec import Spec, parse_spec
from tests.reference.refrun._fakes import HostLikeSyscall, RecordingIO, names

Calls = list[tuple[str, tuple[object, ...]]]


def make_spec(**changes: object) -> Spec:
    config = default_spec(["/bin/sh", "-c", "true"])
    config["process"]["terminal"] = False  # type: ignore[index]
    config["hostname"] = "box"
    config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}  # type: ignore[index]
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            config[section][field] = value  # type: ignore[index]
        else:
            config[key] = value
    return parse_spec(json.loads(json.dumps(config)))


class Run:
    """One init run: the plan, the fakes, and what the parent end of the pipe received."""

    def __init__(self, tmp_path: Path, spec: Spec, *, no_pivot: bool = False) -> None:
        self.rootfs = tmp_path / "rootfs"
        self.rootfs.mkdir(parents=True, exist_ok=True)
        self.sc = HostLikeSyscall()
        self.io = RecordingIO(self.sc.calls)
        self.parent, self.child = sync.pipe_pair()
        new = frozenset(ns.type for ns in spec.linux.namespaces if not ns.path)
        self.plan = InitPlan(
            spec,
            bundle=str(tmp_path),
            rootfs=str(self.rootfs),
            new_ns=new,
            userns=spec.linux.namespace("user") is not None,
            state_dir_fd=99,
            no_pivot=no_pivot,
        )

    def __call__(self) -> Calls:
        try:
            container_init(self.sc, self.io, self.plan, self.child)
        finally:
            self.child.close()
        return self.sc.calls

    def messages(self) -> list[object]:
        out = []
        while (msg := self.parent.recv()) is not None:
            out.append(msg.get("t"))
        return out

    def mounts(self) -> list[tuple[object, ...]]:
        return self.sc.args_of("mount")


@pytest.fixture(autouse=True)
def _keep_cwd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # the init chdirs through the fake only, but be safe


def index(calls: Calls, name: str, pred: object = None) -> int:
    for i, (called, args) in enumerate(calls):
        if called == name and (pred is None or (callable(pred) and pred(args))):
            return i
    raise AssertionError(f"no {name} call matching in {names(calls)}")


def test_init_follows_runc_order(tmp_path: Path) -> None:
    run = Run(tmp_path, make_spec())
    calls = run()
    root = str(run.rootfs)
    steps = [
        index(calls, "io.setsid"),
        index(calls, "io.loopback_up"),  # a new network namespace gets lo up
        index(calls, "mount", lambda a: a[1] == "/" and a[3] == MS_SLAVE | MS_REC),
        index(calls, "mount", lambda a: a[0] == root and a[1] == root and a[3] & MS_BIND),
        index(calls, "mount", lambda a: a[2] == "proc"),
        index(calls, "mount", lambda a: a[2] == "tmpfs" and str(a[1]).endswith("/dev")),
        index(calls, "mknod", lambda a: str(a[0]).endswith("/dev/null")),
        index(calls, "pivot_root"),
        index(calls, "umount2"),
        index(calls, "sethostname"),
        index(calls, "io.write_file", lambda a: a[0] == "/proc/sys/net/ipv4/ip_forward"),
        index(calls, "mount", lambda a: a[1] == "/proc/sys" and a[3] & MS_REMOUNT),
        index(calls, "mount", lambda a: a[1] == "/proc/keys" and a[0] == "/dev/null"),
        index(calls, "mount", lambda a: a[1] == "/" and a[3] & MS_RDONLY),  # root.readonly
        index(calls, "setrlimit"),
        index(calls, "drop_bounding"),
        index(calls, "setresuid"),
        index(calls, "set_capabilities"),
        index(calls, "set_no_new_privs"),
        index(calls, "io.exec_fifo"),
        index(calls, "io.execve"),
    ]
    assert steps == sorted(steps), [names(calls)[i] for i in steps]
    assert run.messages() == ["ready"]
    path, argv, env = calls[-1][1]
    assert (path, argv) == ("/bin/sh", ["/bin/sh", "-c", "true"])
    assert isinstance(env, list)
    assert "HOME=/root" in env


def test_sysctls_come_before_proc_sys_is_read_only(tmp_path: Path) -> None:
    calls = Run(tmp_path, make_spec())()
    sysctl = index(calls, "io.write_file", lambda a: str(a[0]).startswith("/proc/sys/"))
    ro = index(calls, "mount", lambda a: a[1] == "/proc/sys" and a[3] & MS_RDONLY)
    assert sysctl < ro


def test_capabilities_within_the_host_bounding_set(tmp_path: Path) -> None:
    wanted = [*RUNC_DEFAULT_CAPS, "CAP_SYS_RESOURCE"]
    spec = make_spec(
        process__capabilities={k: wanted for k in ("bounding", "effective", "permitted")}
    )
    run = Run(tmp_path, spec)
    calls = run()
    expected = cap_mask(RUNC_DEFAULT_CAPS)  # CAP_SYS_RESOURCE is not ours to give
    assert run.sc.args_of("set_capabilities") == [(expected, expected, 0)]
    dropped = {args[0] for args in run.sc.args_of("drop_bounding")}
    assert CAPS["CAP_SYS_RESOURCE"] not in dropped  # not in the host's bounding set at all
    assert CAPS["CAP_SYS_ADMIN"] in dropped
    assert not dropped & {CAPS[c] for c in RUNC_DEFAULT_CAPS}
    last_drop = max(i for i, (n, _) in enumerate(calls) if n == "drop_bounding")
    assert last_drop < index(calls, "setresuid")


def test_user_switch_keeps_caps_across_setresuid(tmp_path: Path) -> None:
    spec = make_spec(process__user={"uid": 1000, "gid": 1001, "additionalGids": [5, 6]})
    run = Run(tmp_path, spec)
    calls = [c for c in run() if c[0] in ("prctl", "setgroups", "setresgid", "setresuid",
                                          "set_capabilities")]  # fmt: skip
    calls = [c for c in calls if c[0] != "prctl" or c[1][0] == PR_SET_KEEPCAPS]
    assert calls == [
        ("prctl", (PR_SET_KEEPCAPS, 1, 0, 0, 0)),
        ("setgroups", ((5, 6),)),
        ("setresgid", (1001, 1001, 1001)),
        ("setresuid", (1000, 1000, 1000)),
        ("prctl", (PR_SET_KEEPCAPS, 0, 0, 0, 0)),
        ("set_capabilities", calls[-1][1]),
    ]


def test_a_failed_mount_stops_before_pivot_root(tmp_path: Path) -> None:
    run = Run(tmp_path, make_spec())
    original = run.sc.mount
    count = 0

    def flaky(*args: object, **kw: object) -> None:
        nonlocal count
        count += 1
        if count == 3:  # after propagation and the rootfs bind: the first spec mount (/proc)
            raise KernelError("mount", errno.ENODEV, obj="proc on /x")
        original(*args, **kw)  # type: ignore[arg-type]

    run.sc.mount = flaky  # type: ignore[method-assign]
    with pytest.raises(KernelError) as e:
        run()
    assert e.value.op.startswith("mounts[0] (proc on /proc)")
    assert "pivot_root" not in run.sc.names()
    assert "io.execve" not in names(run.sc.calls)


def test_rlimit_above_the_host_hard_limit_names_it(tmp_path: Path) -> None:
    import resource

    _, hard = resource.getrlimit(RLIMITS["RLIMIT_NOFILE"])
    if hard == resource.RLIM_INFINITY:
        pytest.skip("the hard RLIMIT_NOFILE is unlimited here")
    rl = [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": hard + 1}]
    run = Run(tmp_path, make_spec(process__rlimits=rl))
    run.sc.fail("setrlimit", errno.EPERM)
    with pytest.raises(ConfigError) as e:
        run()
    assert e.value.obj == "process.rlimits[0]"
    assert "CAP_SYS_RESOURCE" in str(e.value)
    assert "io.execve" not in names(run.sc.calls)


def test_missing_executable_is_runc_worded(tmp_path: Path) -> None:
    run = Run(tmp_path, make_spec(process__args=["no-such-program-xyz"]))
    with pytest.raises(RefError) as e:
        run()
    assert str(e.value) == 'exec: "no-such-program-xyz": executable file not found in $PATH'
    assert e.value.exit_code == 127
    assert "io.exec_fifo" not in names(run.sc.calls)  # reported by create, not after start


def test_user_namespace_binds_devices(tmp_path: Path) -> None:
    config_ns = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "user")]
    maps = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    spec = make_spec(linux={"namespaces": config_ns, "uidMappings": maps, "gidMappings": maps})
    run = Run(tmp_path, spec)
    run()
    assert "mknod" not in run.sc.names()
    assert ("/dev/null", str(run.rootfs / "dev/null"), "bind", MS_BIND, None) in run.mounts()


def test_no_pivot_moves_and_chroots(tmp_path: Path) -> None:
    run = Run(tmp_path, make_spec(), no_pivot=True)
    calls = run()
    assert "pivot_root" not in run.sc.names()
    move = index(calls, "mount", lambda a: a[1] == "/" and a[3] == MS_MOVE)
    assert move < index(calls, "chroot") < index(calls, "sethostname")


def test_rootfs_propagation_and_host_sysfs(tmp_path: Path) -> None:
    config_ns = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]  # shares the host's net
    spec = make_spec(linux={"namespaces": config_ns, "rootfsPropagation": "private"})
    run = Run(tmp_path, spec)
    run()
    first = run.mounts()[0]
    assert (first[1], first[3]) == ("/", MS_PRIVATE)
    sys_dir = str(run.rootfs / "sys")
    assert ("/sys", sys_dir, "bind", MS_BIND | MS_REC, None) in run.mounts()  # not a new sysfs
    assert "io.loopback_up" not in names(run.sc.calls)


def test_bind_mount_gets_its_flags_in_a_remount(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    mounts = [{"destination": "/data", "type": "bind", "source": "data",
               "options": ["rbind", "ro", "nosuid", "rprivate"]}]  # fmt: skip
    run = Run(tmp_path, make_spec(mounts=mounts))
    run()
    dest = str(run.rootfs / "data")
    binds = [m for m in run.mounts() if m[1] == dest]
    assert binds[0] == (str(tmp_path / "data"), dest, "bind", MS_BIND | MS_REC, None)
    flags = binds[1][3]
    assert isinstance(flags, int)
    assert flags & (MS_REMOUNT | MS_RDONLY | MS_BIND) == MS_REMOUNT | MS_RDONLY | MS_BIND
    assert binds[2] == (None, dest, None, MS_PRIVATE | MS_REC, None)


def test_enter_joins_user_first_then_creates_namespaces(tmp_path: Path) -> None:
    sc = HostLikeSyscall()
    parent, child = sync.pipe_pair()
    parent.send("maps")  # what the parent answers to "userns"
    ns_file = "/proc/self/ns/"
    joins = [("mount", ns_file + "mnt"), ("network", ns_file + "net"), ("user", ns_file + "user")]
    namespaces.enter(sc, child, joins, ["uts", "user", "pid", "mount"])
    assert [a[1] for a in sc.args_of("setns")] == [CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWNS]
    assert sc.names()[3:] == ["unshare", "setresgid", "setresuid", "unshare"]
    assert sc.args_of("unshare") == [(CLONE_NEWUSER,), (CLONE_NEWUTS | CLONE_NEWPID | CLONE_NEWNS,)]
    assert parent.recv() == {"t": "userns"}
    parent.close()
    child.close()


def test_exec_init_order(tmp_path: Path) -> None:
    spec = make_spec()
    assert spec.process is not None
    sc = HostLikeSyscall()
    io = RecordingIO(sc.calls)
    exec_init(sc, io, spec.process, spec.linux, None)
    got = [n for n in names(sc.calls) if n in ("io.setsid", "setrlimit", "setresuid",
                                               "set_capabilities", "set_no_new_privs",
                                               "io.execve")]  # fmt: skip
    assert got == ["io.setsid", "setrlimit", "setresuid", "set_capabilities",
                   "set_no_new_privs", "io.execve"]  # fmt: skip


def test_seccomp_is_loaded_last(tmp_path: Path) -> None:
    pytest.importorskip("reference.oci.seccomp")
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}  # fmt: skip
    run = Run(tmp_path, make_spec(linux={**_linux(), "seccomp": profile}))
    calls = run()
    load = index(calls, "seccomp_set_mode_filter")
    assert index(calls, "set_no_new_privs") < load < index(calls, "io.exec_fifo")


def test_caps_compute_without_spec_caps() -> None:
    sets = caps.compute(None, (1 << 41) - 1)
    assert (sets.bounding, sets.effective, sets.ambient) == (0, 0, 0)


def _linux() -> dict[str, object]:
    linux = default_spec()["linux"]
    assert isinstance(linux, dict)
    return linux


@pytest.mark.parametrize(
    ("unsafe", "expected"),
    [
        ("/etc/passwd", "etc/passwd"),
        ("/../../etc", "etc"),
        ("/link-abs/x", "target/x"),  # an absolute symlink stays inside the rootfs
        ("/link-up/x", "x"),  # so does one that climbs with ..
        ("/missing/y", "missing/y"),
    ],
)
def test_secure_join(tmp_path: Path, unsafe: str, expected: str) -> None:
    (tmp_path / "target").mkdir()
    os.symlink("/target", tmp_path / "link-abs")
    os.symlink("../../..", tmp_path / "link-up")
    assert secure_join(str(tmp_path), unsafe) == str(tmp_path / expected).rstrip("/")


def test_look_path(tmp_path: Path) -> None:
    assert process.look_path("sh", ["PATH=/nonexistent:/bin"]) == "/bin/sh"
    with pytest.raises(RefError, match="stat /nope: no such file"):
        process.look_path("/nope", [])
    data = tmp_path / "data"
    data.write_text("not a program")
    with pytest.raises(RefError, match="permission denied") as e:
        process.look_path(str(data), [])
    assert e.value.exit_code == 126


def test_errors_cross_the_pipe_as_themselves() -> None:
    for err in (
        ConfigError("bad value", obj="process.cwd"),
        KernelError("mount", errno.EPERM, obj="proc on /proc"),
        process.ExecError('exec: "x": executable file not found in $PATH'),
    ):
        back = sync.decode_error({"t": "error", **sync.encode_error(err)})
        assert (type(back).__name__ if not isinstance(err, process.ExecError) else "ok") in (
            type(err).__name__, "ok")  # fmt: skip
        assert str(back) == str(err)
        assert back.exit_code == err.exit_code
