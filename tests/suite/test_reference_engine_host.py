"""The reference target's engine hosts: the session refd in a network namespace of its own
(made, found through its socket, deleted after refd), lab refds in a caller's namespace
(fixtures.daemon_config), and the leak checks that know of both (fixtures.leaks)."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures import host
from fixtures.daemon_config import private_daemon
from fixtures.image.build import ensure_artifacts
from fixtures.leaks import (
    HostSnapshot,
    NetnsSnapshot,
    Traces,
    engine_leaks_dir,
    file_engine_leaks,
)
from fixtures.netlab import ROOT, Netns, engine_netns, lab_netns, links
from fixtures.private_dockerd import DaemonExited
from fixtures.session import CACHE_DIR, STALE_NAME, run_id, worker_id
from fixtures.targets.base import wait_for
from fixtures.targets.reference import REFD, ReferenceDriver

needs_refd = pytest.mark.skipif(
    os.geteuid() != 0 or not REFD.exists(), reason="needs root and bin/refd"
)


def runs(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not: its reaper, init, may not have come yet)."""
    try:
        return host.status(pid).get("State", "Z").split()[0] not in ("Z", "X")
    except OSError:
        return False


# -- NetnsSnapshot: what counts as left behind in an engine host ------------------------------
def snapshot(links: set[str], *rules: str) -> NetnsSnapshot:
    return NetnsSnapshot(frozenset(links), Counter(f"iptables-save: {r}" for r in rules))


def test_engine_host_leaks_are_new_links_and_rules_of_gone_links() -> None:
    before = snapshot({"lo", "refd0"}, "-A FORWARD -o refd0 -j DOCKER")
    after = snapshot(
        {"lo", "refd0", "veth1a2b3c"},
        "-A FORWARD -o refd0 -j DOCKER",
        "-A FORWARD -j DOCKER-USER",  # a chain jump made lazily: the daemon's own
        "-A DOCKER -d 172.17.0.2/32 ! -i refd0 -o refd0 -p tcp -j ACCEPT",  # per container
        "-A DOCKER-ISOLATION-STAGE-1 -i br-0123456789ab ! -o br-0123456789ab -j X",  # gone
        "-A FORWARD -i refd+ -j ACCEPT",  # a wildcard names no one link
    )
    assert after.leaks_since(before) == [
        "link veth1a2b3c",
        "firewall rule iptables-save: -A DOCKER -d 172.17.0.2/32 ! -i refd0 -o refd0 -p tcp "
        "-j ACCEPT",
        "firewall rule iptables-save: -A DOCKER-ISOLATION-STAGE-1 -i br-0123456789ab "
        "! -o br-0123456789ab -j X",
    ]
    assert before.leaks_since(after) == []  # what went away is no leak


def test_filed_engine_leaks_join_the_session_check() -> None:
    label = f"test-{os.getpid()}"
    path = engine_leaks_dir() / f"{label}.txt"
    before = HostSnapshot.take()
    try:
        file_engine_leaks(label, [])
        assert not path.exists(), "nothing to file makes no file"
        file_engine_leaks(label, ["link veth0"])
        assert HostSnapshot.take().leaks_since(before) == [
            f"in the engine host of {label}: link veth0"
        ]
    finally:
        path.unlink(missing_ok=True)


# -- CLEAN-01: --network host containers share the engine's namespace, not ours ---------------
@pytest.fixture
def sleeper_in_netns() -> Iterator[tuple[int, Netns]]:
    with lab_netns() as ns:
        process = subprocess.Popen(ns.argv("sleep", "60"))
        try:
            # nsenter joins the namespace after the fork: wait until it has.
            wait_for(lambda: host.ns_inode(process.pid, "net") == ns.inode, 10, "nsenter")
            yield process.pid, ns
        finally:
            process.kill()
            process.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_traces_leave_the_engines_namespace_alone(sleeper_in_netns: tuple[int, Netns]) -> None:
    pid, ns = sleeper_in_netns
    assert Traces.capture(pid).netns == ns.inode
    assert Traces.capture(pid, engine_netns=ns.inode).netns is None


# -- the session refd --------------------------------------------------------------------------
@pytest.fixture
def session_refd(tmp_path: Path) -> Iterator[ReferenceDriver]:
    driver = ReferenceDriver("reference", tmp_path / "driver")
    image = ensure_artifacts(CACHE_DIR / "image")
    try:
        driver.setup(image.tarball, image.rootfs, image.digest)
        yield driver
    finally:
        driver.teardown()


@needs_refd
def test_session_refd_runs_in_an_engine_host_of_its_own(session_refd: ReferenceDriver) -> None:
    assert session_refd.netns is not None
    path = Path(session_refd.netns)
    # A run's name: session.sweep deletes it once the run is gone.
    assert path.parent == Path("/run/netns")
    assert STALE_NAME.match(path.name), path.name
    assert path.name.startswith(f"cts-{run_id()}-"), path.name
    found = engine_netns(session_refd)
    assert found.inode == Netns(str(path)).inode != ROOT.inode
    assert host.ns_inode(session_refd.pid, "net") == found.inode
    assert [(link.name, link.up) for link in links(found) if link.name == "lo"] == [("lo", True)]
    # Still detached from the test process tree.
    assert host.status(session_refd.pid).get("PPid") != str(os.getpid())


@needs_refd
def test_teardown_stops_refd_then_deletes_the_engine_host(tmp_path: Path) -> None:
    driver = ReferenceDriver("reference", tmp_path / "driver")
    image = ensure_artifacts(CACHE_DIR / "image")
    driver.setup(image.tarball, image.rootfs, image.digest)
    pid, netns = driver.pid, Path(str(driver.netns))
    label = f"reference-{worker_id()}-{netns.name}"
    leaked = engine_leaks_dir() / f"{label}.txt"
    # A leak in the engine host: filed for CLEAN-02 at teardown.
    subprocess.run(["ip", "-n", netns.name, "link", "add", "leak0", "type", "bridge"], check=True)
    try:
        driver.teardown()
        assert not runs(pid), f"refd {pid} still runs"
        assert not netns.exists(), f"{netns} outlived the driver"
        assert not driver.root.exists()
        assert leaked.read_text() == "link leak0\n"
    finally:
        leaked.unlink(missing_ok=True)


def test_purge_runs_where_refd_ran_or_nowhere(tmp_path: Path) -> None:
    driver = ReferenceDriver("reference", tmp_path, netns="/run/netns/cts-gone-for-good")
    assert driver._purge_enter() == ["unshare", "-n"]  # never the host's namespace
    driver.netns = "/proc/self/ns/net"
    assert driver._purge_enter() == ["nsenter", "--net=/proc/self/ns/net", "--"]


# -- lab refds -------------------------------------------------------------------------------
@needs_refd
def test_lab_refd_runs_in_the_lab_with_its_own_dirs_and_hostname(tmp_path: Path) -> None:
    target = ReferenceDriver("reference", tmp_path)  # only its kind matters
    with (
        lab_netns() as ns,
        private_daemon(target, {}, ns, private_dirs=("/etc/docker",), hostname="lab-a") as lab,
    ):
        pid = lab.daemon_pid
        assert lab.daemon.alive()
        assert engine_netns(lab.driver).inode == ns.inode == host.ns_inode(pid, "net")
        assert (
            subprocess.run(
                ["nsenter", f"--uts=/proc/{pid}/ns/uts", "hostname"], capture_output=True, text=True
            ).stdout.strip()
            == "lab-a"
        )
        (lab.daemon.private_dir("/etc/docker") / "marker").write_text("mine")
        assert Path(f"/proc/{pid}/root/etc/docker/marker").read_text() == "mine"
        assert not Path("/etc/docker/marker").exists()
        root = lab.daemon.root
        assert lab.driver.version().startswith("refd ")
    assert not runs(pid), f"lab refd {pid} still runs"
    assert not root.exists()


@needs_refd
def test_lab_refd_that_refuses_its_config_raises_daemon_exited(tmp_path: Path) -> None:
    target = ReferenceDriver("reference", tmp_path)
    with lab_netns() as ns:
        config = {"bridge": "labbr0", "bip": "10.88.0.1/24"}
        with (
            pytest.raises(DaemonExited, match="mutually exclusive"),
            private_daemon(target, config, ns),
        ):
            pass
        assert [link.name for link in links(ns)] == ["lo"]
