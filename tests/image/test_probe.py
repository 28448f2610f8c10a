"""The test image builder and the probe, run directly on the host (same namespaces as pytest)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.image.build import ImageArtifacts, ensure_artifacts, is_static_elf

NS_NAMES = ("uts", "ipc", "net", "mnt", "pid", "user", "cgroup", "time")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("image-cache")


@pytest.fixture(scope="session")
def image(cache_dir: Path) -> ImageArtifacts:
    return ensure_artifacts(cache_dir)


def run(image: ImageArtifacts, *args: str, rc: int = 0, prefix: tuple[str, ...] = ()) -> str:
    proc = subprocess.run(
        [*prefix, str(image.probe), *args], capture_output=True, text=True, timeout=15
    )
    assert proc.returncode == rc, f"probe {args}: rc {proc.returncode}, stderr {proc.stderr!r}"
    return proc.stdout


def run_json(image: ImageArtifacts, *args: str, rc: int = 0, **kw: Any) -> dict[str, Any]:
    out = run(image, *args, rc=rc, **kw)
    assert out.endswith("\n"), out
    assert out.count("\n") == 1, out
    value = json.loads(out)
    assert isinstance(value, dict)
    return value


@pytest.fixture
def background(image: ImageArtifacts) -> Iterator[list[subprocess.Popen[str]]]:
    """Started probes are killed at teardown if still running."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=5)


def start(image: ImageArtifacts, procs: list[subprocess.Popen[str]], *args: str) -> Any:
    """Starts a probe in the background; returns the JSON of its first line."""
    p = subprocess.Popen([str(image.probe), *args], stdout=subprocess.PIPE, text=True)
    procs.append(p)
    assert p.stdout is not None
    return json.loads(p.stdout.readline())


def finish(p: subprocess.Popen[str]) -> tuple[int, list[Any]]:
    out, _ = p.communicate(timeout=10)
    return p.returncode, [json.loads(line) for line in out.splitlines()]


# ---------- builder ----------


def test_build_is_idempotent(image: ImageArtifacts, cache_dir: Path) -> None:
    before = image.probe.stat()
    again = ensure_artifacts(cache_dir)
    assert again == image
    after = again.probe.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(p.name for p in cache_dir.iterdir()) == [".lock", image.digest[:16]]


def test_concurrent_builds_agree(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "fixtures.image.build"]
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen([*cmd, "--cache", str(tmp_path)], cwd=root, stdout=subprocess.PIPE)
        for _ in range(3)
    ]
    outs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1] == outs[2]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", outs[0]["digest"][:16]]


def test_rootfs_layout(image: ImageArtifacts) -> None:
    bin_dir = image.rootfs / "bin"
    assert is_static_elf(bin_dir / "busybox")
    assert is_static_elf(bin_dir / "probe")
    assert not is_static_elf(Path("/usr/bin/python3").resolve())
    for applet in ("sh", "ls", "cat", "sleep", "id"):
        assert os.readlink(bin_dir / applet) == "busybox"
    assert not (bin_dir / "probe").is_symlink()
    assert stat.S_IMODE((image.rootfs / "tmp").stat().st_mode) == 0o1777
    for d in ("proc", "sys", "dev", "root", "run", "var", "etc", "mnt", "home"):
        assert (image.rootfs / d).is_dir()
    etc = image.rootfs / "etc"
    assert "nobody:x:65534:65534:" in (etc / "passwd").read_text()
    assert "nogroup:x:65534:" in (etc / "group").read_text()
    assert (etc / "cts-image").read_text().strip() == image.digest
    for name in ("hostname", "hosts", "resolv.conf"):
        assert (etc / name).read_text() == ""


def test_tarball(image: ImageArtifacts) -> None:
    with tarfile.open(image.tarball) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert "./bin/probe" in names
    assert "./bin/sh" in names
    assert names[0] == "."
    assert all((m.uid, m.gid, m.mtime) == (0, 0, 0) for m in members)
    sh = members[names.index("./bin/sh")]
    assert sh.issym()
    assert sh.linkname == "busybox"
    assert members[names.index("./tmp")].mode == 0o1777


# ---------- probe ----------


def test_ns_matches_ours(image: ImageArtifacts) -> None:
    got = run_json(image, "ns")
    for name in NS_NAMES:
        path = f"/proc/self/ns/{name}"
        if os.path.exists(path):
            assert got[name] == os.stat(path).st_ino, name


def test_pids(image: ImageArtifacts) -> None:
    got = run_json(image, "pids")
    assert got["ppid"] == os.getpid()
    procs = {p["pid"]: p["comm"] for p in got["procs"]}
    assert procs[got["pid"]] == "probe"
    assert os.getpid() in procs


def test_hostname(image: ImageArtifacts) -> None:
    u = os.uname()
    assert run_json(image, "hostname")["hostname"] == u.nodename


def test_alloc_fork_burn(image: ImageArtifacts) -> None:
    assert run_json(image, "alloc", "8") == {"allocated_mib": 8}
    assert run_json(image, "fork", "3", "0") == {"forked": 3, "errno": 0}
    t0 = time.monotonic()
    assert run_json(image, "burn", "0.2") == {"burned": 0.2}
    assert time.monotonic() - t0 >= 0.2


def test_threads(image: ImageArtifacts) -> None:
    proc = subprocess.Popen(
        [str(image.probe), "threads", "3", "5"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline()) == {"threads": 4}
        assert len(os.listdir(f"/proc/{proc.pid}/task")) == 4
    finally:
        proc.kill()
        proc.wait()


def test_ipc(image: ImageArtifacts) -> None:
    key = 0x5C700000 + os.getpid() % 0x10000
    created = run_json(image, "ipc", "create", hex(key))
    try:
        listed = run_json(image, "ipc", "list")
        for kind in ("shm", "sem", "msg"):
            assert key in listed[kind], kind
    finally:
        for flag, name in (("-m", "shmid"), ("-s", "semid"), ("-q", "msqid")):
            subprocess.run(["ipcrm", flag, str(created[name])], check=True)
    listed = run_json(image, "ipc", "list")
    assert all(key not in listed[kind] for kind in ("shm", "sem", "msg"))


def test_caps_and_idmap(image: ImageArtifacts) -> None:
    caps = run_json(image, "caps")
    assert (caps["uid"], caps["gid"]) == (os.getuid(), os.getgid())
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        int(caps[field], 16)
    assert isinstance(caps["NoNewPrivs"], int)
    assert isinstance(caps["Seccomp"], int)
    idmap = run_json(image, "idmap")
    assert idmap["uid_map"] == Path("/proc/self/uid_map").read_text()
    assert idmap["gid_map"] == Path("/proc/self/gid_map").read_text()


def test_cat_write_cgroup(image: ImageArtifacts, tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    assert run_json(image, "write", str(target), "héllo\n") == {"ok": True}
    assert target.read_text() == "héllo\n"
    assert stat.S_IMODE(target.stat().st_mode) & 0o777 == 0o644 & ~_umask()
    assert run(image, "cat", str(target)) == "héllo\n"
    run(image, "cat", str(tmp_path / "missing"), rc=1)
    bad = run_json(image, "write", str(tmp_path / "no" / "dir"), "x")
    assert bad == {"ok": False, "errno": errno.ENOENT}
    assert run(image, "cgroup") == Path("/proc/self/cgroup").read_text()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_try_ops(image: ImageArtifacts, tmp_path: Path) -> None:
    root = os.geteuid() == 0
    (tmp_path / "mnt").mkdir()
    unshare = shutil.which("unshare")
    if unshare and root:
        got = run_json(image, "try", "mount-tmpfs", str(tmp_path / "mnt"), prefix=(unshare, "-m"))
        assert got["op"] == "mount-tmpfs"
        assert got["ok"] or got["errno"] > 0
        assert not os.path.ismount(tmp_path / "mnt")
        got = run_json(image, "try", "sethostname", "cts-probe", prefix=(unshare, "-u"))
        assert got == {"op": "sethostname", "ok": True, "errno": 0}
        assert os.uname().nodename != "cts-probe"
        no_caps = (unshare, "-u", "setpriv", "--bounding-set=-all")
        got = run_json(image, "try", "sethostname", "x", prefix=no_caps)
        assert got == {"op": "sethostname", "ok": False, "errno": errno.EPERM}
    node = tmp_path / "sda"
    got = run_json(image, "try", "mknod", str(node))
    assert got["ok"] == root or got["errno"] == errno.EPERM
    if got["ok"]:
        assert stat.S_ISBLK(node.lstat().st_mode)
        assert os.major(node.lstat().st_rdev) == 8
        node.unlink()
    got = run_json(image, "try", "mknod", str(node), "7", "3")
    assert got["ok"] == root or got["errno"] == errno.EPERM
    if got["ok"]:
        assert (os.major(node.lstat().st_rdev), os.minor(node.lstat().st_rdev)) == (7, 3)
    run(image, "try", "mknod", str(node), "7", rc=2)
    got = run_json(image, "try", "init-module")  # an all-zero image: never a module
    assert (got["op"], got["ok"]) == ("init-module", False)
    assert got["errno"] > 0
    run(image, "try", "init-module", "x", rc=2)
    plain = tmp_path / "plain"
    plain.write_text("")
    assert run_json(image, "try", "open-rdwr", str(plain))["ok"] is True
    assert run_json(image, "try", "open-rdwr", str(tmp_path / "nope"))["errno"] == errno.ENOENT
    assert run_json(image, "try", "kill", str(os.getpid()), "0")["ok"] is True
    assert run_json(image, "try", "kill", "999999999", "TERM")["errno"] == errno.ESRCH
    got = run_json(image, "try", "chown", str(plain), "65534", "65534")
    assert got["ok"] == root
    if root:
        assert (plain.stat().st_uid, plain.stat().st_gid) == (65534, 65534)


def test_tcp_echo(image: ImageArtifacts, background: list[subprocess.Popen[str]]) -> None:
    port = start(image, background, "tcp-listen", "0", "2")["listening"]
    assert port > 0
    msg = 'say "hi"\\\n\tü'
    assert run_json(image, "tcp-send", "127.0.0.1", str(port), msg) == {"reply": "echo:" + msg}
    assert run_json(image, "tcp-send", "127.0.0.1", str(port), "two") == {"reply": "echo:two"}
    rc, lines = finish(background[0])
    assert rc == 0
    assert [line["data"] for line in lines] == [msg, "two"]
    assert all(line["peer"].startswith("127.0.0.1:") for line in lines)
    refused = run_json(image, "tcp-send", "127.0.0.1", str(port), "x", rc=1)
    assert refused["errno"] == errno.ECONNREFUSED


def test_udp(image: ImageArtifacts, background: list[subprocess.Popen[str]]) -> None:
    port = start(image, background, "udp-recv", "0", "5")["bound"]
    msg = 'dgram "q"\n'
    assert run_json(image, "udp-send", "127.0.0.1", str(port), msg, "2") == {"sent": 2}
    rc, lines = finish(background[0])
    assert rc == 0
    assert lines[0]["data"] == msg
    assert lines[0]["from"].startswith("127.0.0.1:")
    start(image, background, "udp-recv", "0", "0.2")
    assert finish(background[1]) == (1, [{"timeout": True}])


def test_sleep_exits_zero_on_sigterm(
    image: ImageArtifacts, background: list[subprocess.Popen[str]]
) -> None:
    p = subprocess.Popen([str(image.probe), "sleep", "forever"], text=True)
    background.append(p)
    deadline = time.monotonic() + 5
    while not _catches(p.pid, signal.SIGTERM):  # wait until the handler is installed
        assert time.monotonic() < deadline
        time.sleep(0.01)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=5) == 0
    run(image, "sleep", "0.05")


def _catches(pid: int, sig: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False


def test_exit_echo_and_usage(image: ImageArtifacts) -> None:
    run(image, "exit", "7", rc=7)
    assert run(image, "echo", "a", "b c") == "a b c\n"
    run(image, "no-such-subcommand", rc=2)
    run(image, rc=2)
    run(image, "alloc", "lots", rc=2)
    run(image, "exit", rc=2)
    run(image, "try", "reboot", "now", rc=2)
    run(image, "ipc", "create", "0xzz", rc=2)
