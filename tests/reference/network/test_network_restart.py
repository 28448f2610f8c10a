"""refd's networking when things stop half-way: a container start that fails after its
endpoint was made, refd's own restarts, a crash, a "reboot" of its engine host, and
`refd --purge` (what the test driver runs last). A failed start gives back its veth, sandbox,
address and host port; user networks come back as they were (bridge, address, the same
firewall rules, once each); a live-restored container keeps its interface and its published
port until it stops; a crash undoes the endpoints of the containers it killed; a purge leaves
refd's namespace empty. Each test has a refd of its own (tests.reference.engine._refd).
Needs root.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.session import link_name
from fixtures.targets.reference import REFD
from tests.reference.engine._refd import Refd, needs_root, running_refd
from tests.reference.network.test_network_e2e import (
    SLEEP,
    failed_start_leaves_no_endpoint,
    footprint,
    in_host,
    links,
    names,
    refused,
    rules,
    run,
    settings,
)

pytestmark = pytest.mark.skipif(needs_root(), reason="needs root: refd, netns, iptables")

PORT = 18090  # refd's namespace is its own: no other test or engine publishes there
SERVE = ["nc", "-ll", "-p", "80", "-e", "hostname"]  # answers every connection with its name


def wait_output(refd: Refd, port: int, wanted: str, timeout: float = 10) -> str:
    """What 127.0.0.1:`port` in refd's namespace answers (a published port), once it is
    `wanted` (the server in the container may still be starting)."""
    deadline, said = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        said = in_host(refd, "busybox", "nc", "-w", "2", "127.0.0.1", str(port)).stdout.strip()
        if said == wanted:
            break
        time.sleep(0.1)
    return said


def stop(refd: Refd, sig: signal.Signals = signal.SIGTERM) -> None:
    pid = refd.pid()
    os.kill(pid, sig)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists(), f"refd {pid} did not stop"


def restart(refd: Refd, sig: signal.Signals = signal.SIGTERM, *, reboot: bool = False) -> None:
    """Stop refd and start it again on the same data-root and exec-root. `reboot`: in a fresh
    engine host, as after a reboot (kernel state gone, refd's records kept); the driver's
    leak baseline (lo, refd0, refd's base chains) holds there too."""
    stop(refd, sig)
    if reboot:
        refd.driver._delete_engine_host()  # start_daemon makes a new one
    refd.driver.start_daemon()


def addresses(refd: Refd) -> frozenset[tuple[str, str]]:
    """(link, IPv4 address) of refd's namespace."""
    listed = in_host(refd, "ip", "-o", "-4", "addr", "show").stdout.split("\n")
    return frozenset((ln.split()[1], ln.split()[3]) for ln in listed if ln.strip())


def create(refd: Refd, *args: str) -> str:
    done = refd.ctl("network", "create", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def network_ids(refd: Refd) -> dict[str, str]:
    """Name → full id of every listed network."""
    listed = refd.ctl("network", "ls", "--no-trunc", "--format", "{{.Name}} {{.ID}}").stdout
    return dict(line.split() for line in listed.splitlines())


def container_pid(refd: Refd, cid: str) -> int:
    return int(refd.ctl("inspect", "-f", "{{.State.Pid}}", cid).stdout)


def eth0(pid: int) -> list[str]:
    """The IPv4 addresses of eth0 in the namespace of process `pid`."""
    shown = subprocess.run(
        ["nsenter", "-t", str(pid), "-n", "ip", "-o", "-4", "addr", "show", "eth0"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return [line.split()[3] for line in shown.splitlines()]


Kernel = tuple[frozenset[str], Counter[str]]  # links and firewall rules of refd's namespace


def kernel(refd: Refd) -> Kernel:
    return links(refd), rules(refd)


def changes(before: Kernel, after: Kernel) -> dict[str, list[str]]:
    """What differs, readably ({} when nothing does)."""
    found = {
        "links gone": sorted(before[0] - after[0]),
        "links new": sorted(after[0] - before[0]),
        "rules gone": sorted((before[1] - after[1]).elements()),
        "rules new": sorted((after[1] - before[1]).elements()),
    }
    return {key: value for key, value in found.items() if value}


def dnat(found: Counter[str], port: int) -> list[str]:
    return [r for r in found if "DNAT" in r and f"--dport {port} " in r for _ in range(found[r])]


def records_and_sandboxes(refd: Refd) -> tuple[frozenset[str], frozenset[str], list[str]]:
    netns_dir = refd.root / "exec" / "netns"
    mounts = [m for m in refd.mounts() if f" {netns_dir}/" in m]
    return names(refd.data / "network" / "endpoints"), names(netns_dir), mounts


NOTHING_JOINED: tuple[frozenset[str], frozenset[str], list[str]] = (frozenset(), frozenset(), [])


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A short path: the socket's must fit a sockaddr_un."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="rnr", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


# -- failed starts --------------------------------------------------------------------------
def sockets(refd: Refd) -> int:
    """How many sockets refd holds (the API's, held host ports, the embedded DNS server's: a
    sandbox's DNS sockets would keep its namespace alive after its mount is gone)."""
    fds = Path(f"/proc/{refd.pid()}/fd")
    found = 0
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            found += os.readlink(fd).startswith("socket:")
    return found


def same_sockets(refd: Refd, before: int) -> int:
    """refd's socket count once the API connection of the last command is closed."""
    deadline = time.monotonic() + 3
    while (now := sockets(refd)) != before and time.monotonic() < deadline:
        time.sleep(0.05)
    return now


def test_failed_start_gives_back_veth_sandbox_and_address(workdir: Path) -> None:
    """A command that does not exist fails the runtime's create after the endpoint was made
    and the embedded DNS server was serving the sandbox: all of it is undone, and the next
    container gets the same (lowest) address."""
    with running_refd(workdir) as refd:
        create(refd, "--subnet", "10.205.0.0/24", "net")
        # A container's whole life first: the DNS server's thread stays once started.
        ran = refd.ctl("run", "--rm", "--pull=never", "--network", "net", refd.image, "true")
        assert ran.returncode == 0, ran.stderr
        before, held = footprint(refd), sockets(refd)
        refused(run(refd, "--name", "bad", "--network", "net", refd.image, "/nonexistent"), "exec")
        failed_start_leaves_no_endpoint(refd, "bad", "net", before)
        assert same_sockets(refd, held) == held
        cid = run(refd, "--network", "net", refd.image, *SLEEP).stdout.strip()
        assert settings(refd, cid, "net")["IPAddress"] == "10.205.0.2"
        assert refd.ctl("rm", "-f", cid).returncode == 0
        assert footprint(refd) == before
        assert same_sockets(refd, held) == held
        assert refd.ctl("network", "rm", "net").returncode == 0


def test_taken_host_port_fails_the_start_and_leaves_no_endpoint(workdir: Path) -> None:
    """The second container's endpoint is made and plumbed before publishing fails."""
    with running_refd(workdir) as refd:
        create(refd, "--subnet", "10.206.0.0/24", "net")
        first = run(refd, "--network", "net", "-p", f"{PORT}:80", refd.image, *SERVE).stdout.strip()
        assert wait_output(refd, PORT, first[:12]) == first[:12]
        before = footprint(refd)
        second = ("--name", "second", "--network", "net", "-p", f"{PORT}:80", refd.image, *SERVE)
        refused(run(refd, *second), "port is already allocated")
        failed_start_leaves_no_endpoint(refd, "second", "net", before)
        assert wait_output(refd, PORT, first[:12]) == first[:12]  # still the first's
        assert refd.ctl("rm", "-f", first).returncode == 0
        assert refd.ctl("network", "rm", "net").returncode == 0


# -- restarts ---------------------------------------------------------------------------------
@pytest.mark.parametrize("reboot", [False, True], ids=["kernel-kept", "rebooted"])
def test_restart_restores_user_networks(workdir: Path, reboot: bool) -> None:
    with running_refd(workdir) as refd:
        fresh = kernel(refd)
        made = {
            "plain": create(refd, "--subnet", "10.210.0.0/24", "plain"),
            "closed": create(
                refd,
                "--subnet=10.211.0.0/24",
                "--internal",
                "-o=com.docker.network.bridge.enable_icc=false",
                "closed",
            ),
            "named": create(  # a default pool, a bridge name of its own, no masquerading
                refd,
                f"-o=com.docker.network.bridge.name={link_name()}",
                "-o=com.docker.network.bridge.enable_ip_masquerade=false",
                "named",
            ),
        }
        cid = run(refd, "--network", "plain", refd.image, *SLEEP).stdout.strip()
        assert refd.ctl("stop", "-t", "1", cid).returncode == 0
        before, before_addresses = kernel(refd), addresses(refd)
        restart(refd, reboot=reboot)
        assert changes(before, kernel(refd)) == {}  # every rule back, none twice
        assert addresses(refd) == before_addresses
        listed = network_ids(refd)
        assert {name: listed.get(name) for name in made} == made
        # The stopped container starts again on its network, with its address, and reaches
        # its gateway through the restored bridge.
        assert refd.ctl("start", cid).returncode == 0
        assert settings(refd, cid, "plain")["IPAddress"] == "10.210.0.2"
        ping = refd.ctl("exec", cid, "ping", "-c", "1", "-W", "5", "10.210.0.1")
        assert ping.returncode == 0, ping.stdout + ping.stderr
        assert refd.ctl("rm", "-f", cid).returncode == 0
        for name in made:
            assert refd.ctl("network", "rm", name).returncode == 0
        assert changes(fresh, kernel(refd)) == {}


def published(refd: Refd, network: str) -> Kernel:
    """refd's namespace as it is now, plus what stays from the first published port on
    `network` until the network goes: the bridge's loopback masquerade (see portmap.py)."""
    links_now, rules_now = kernel(refd)
    bridge = "br-" + network[:12]
    rules_now[f"nat -A REFD-POSTROUTING -s 127.0.0.0/8 -o {bridge} -j MASQUERADE"] += 1
    return links_now, rules_now


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_live_restore_keeps_a_published_container(workdir: Path, sig: signal.Signals) -> None:
    with running_refd(workdir, {"live-restore": True}) as refd:
        idle = published(refd, create(refd, "--subnet", "10.212.0.0/24", "pub"))
        cid = run(refd, "--network", "pub", "-p", f"{PORT}:80", refd.image, *SERVE).stdout.strip()
        pid = container_pid(refd, cid)
        assert wait_output(refd, PORT, cid[:12]) == cid[:12]
        running = kernel(refd)
        assert dnat(running[1], PORT) != []
        restart(refd, sig)
        assert container_pid(refd, cid) == pid
        assert eth0(pid) == ["10.212.0.2/24"]
        assert changes(running, kernel(refd)) == {}
        assert wait_output(refd, PORT, cid[:12]) == cid[:12]
        # refd holds the host port again: no second container gets it.
        second = ("--name", "second", "--network", "pub", "-p", f"{PORT}:80", refd.image, *SERVE)
        refused(run(refd, *second), "port is already allocated")
        assert refd.ctl("rm", "-f", "second").returncode == 0  # it stays created, as in Docker
        assert refd.ctl("stop", "-t", "1", cid).returncode == 0
        assert changes(idle, kernel(refd)) == {}  # the DNAT rule and the veth went
        assert records_and_sandboxes(refd) == NOTHING_JOINED
        again = run(refd, "--network", "pub", "-p", f"{PORT}:80", refd.image, *SERVE)
        assert again.returncode == 0, again.stderr  # and the port is free
        assert refd.ctl("rm", "-f", again.stdout.strip(), cid).returncode == 0
        assert refd.ctl("network", "rm", "pub").returncode == 0


def test_crash_without_live_restore_undoes_endpoints(workdir: Path) -> None:
    with running_refd(workdir) as refd:
        idle = published(refd, create(refd, "--subnet", "10.213.0.0/24", "pub"))
        cid = run(refd, "--network", "pub", "-p", f"{PORT}:80", refd.image, *SERVE).stdout.strip()
        assert dnat(rules(refd), PORT) != []
        restart(refd, signal.SIGKILL)  # nobody stopped the container: refd kills it at start
        state = json.loads(refd.ctl("inspect", "-f", "{{json .State}}", cid).stdout)
        assert (state["Status"], state["ExitCode"]) == ("exited", 137)
        assert changes(idle, kernel(refd)) == {}
        assert records_and_sandboxes(refd) == NOTHING_JOINED
        assert settings(refd, cid, "pub")["IPAddress"] == ""
        # its address and host port are free: it gets both again
        assert refd.ctl("start", cid).returncode == 0
        assert settings(refd, cid, "pub")["IPAddress"] == "10.213.0.2"
        assert wait_output(refd, PORT, cid[:12]) == cid[:12]
        assert refd.ctl("rm", "-f", cid).returncode == 0
        assert refd.ctl("network", "rm", "pub").returncode == 0


# -- purge ------------------------------------------------------------------------------------
@pytest.mark.parametrize("live_restore", [False, True], ids=["stopped", "live-restore"])
def test_purge_leaves_nothing_in_the_engine_host(workdir: Path, live_restore: bool) -> None:
    """With live-restore the containers are still running (endpoints joined, port published)
    when the purge starts; without, refd stopped them on SIGTERM."""
    with running_refd(workdir, {"live-restore": live_restore}) as refd:
        create(refd, "--subnet", "10.214.0.0/24", "pub")
        create(
            refd,
            "--subnet",
            "10.215.0.0/24",
            "--internal",
            "-o",
            "com.docker.network.bridge.enable_icc=false",
            "closed",
        )
        run(refd, "--network", "pub", "-p", f"{PORT}:80", refd.image, *SERVE)
        run(refd, "--network", "closed", refd.image, *SLEEP)
        stop(refd)
        purge = [str(REFD), *refd.driver.daemon_args(), "--purge"]
        done = in_host(refd, *purge, timeout=120)
        assert done.returncode == 0, done.stderr
        assert links(refd) == {"lo"}
        left = [r for r in rules(refd) if "REFD" in r or " -A " in r]
        assert left == [], left
        assert records_and_sandboxes(refd) == NOTHING_JOINED
        assert names(refd.data / "network" / "networks") == frozenset()
        assert [m for m in refd.mounts() if " overlay " in m or "/netns/" in m] == []
