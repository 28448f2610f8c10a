"""User namespace under Docker's userns-remap, on a private dockerd of the suite's own.

The shared daemon must not be reconfigured, so a private one runs with
{"userns-remap": "default"} (fixtures.private_dockerd: own data root, exec root, socket and pid
file under /run/cts-userns-*/, stopped by PID, its directory removed). It creates the user
`dockremap` and its /etc/subuid and /etc/subgid lines on first use; those stay, as Docker
leaves them. Everything is checked from the host: uid_map, /proc/PID/status, file owners.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures import host
from fixtures.containers import Containers
from fixtures.image.build import ensure_artifacts
from fixtures.leaks import Ledger
from fixtures.private_dockerd import PrivateDockerd, private_dockerd
from fixtures.probe import SLEEP, probe
from fixtures.security import attempt, refused
from fixtures.session import CACHE_DIR
from fixtures.targets.base import ContainerSpec, Driver, Mount
from fixtures.targets.engine_cli import DockerDriver

REMAP_USER = "dockremap"  # what "default" means (moby daemon/daemon_unix.go)
RANGE_LENGTH = 65536  # moby's defaultRangeLen for the ranges it adds itself


@dataclass(frozen=True)
class Remapped:
    daemon: PrivateDockerd
    driver: DockerDriver
    uids: tuple[int, int]  # (first host id, count) from /etc/subuid
    gids: tuple[int, int]  # from /etc/subgid


def subordinate_range(path: Path, user: str) -> tuple[int, int]:
    for line in path.read_text().splitlines():
        name, _, rest = line.partition(":")
        if name == user:
            start, count = rest.split(":")
            return int(start), int(count)
    raise AssertionError(f"no {user} line in {path} after the daemon started")


@pytest.fixture(scope="module")
def remapped(target: Driver) -> Iterator[Remapped]:
    if target.kind != "docker":
        pytest.skip(f"userns-remap is a dockerd option; {target.name} has no such mode")
    with private_dockerd(
        f"cts-userns-{secrets.token_hex(4)}", config={"userns-remap": "default"}
    ) as daemon:
        # A stable driver name: it only names the image-import lock in the shared cache.
        driver = DockerDriver("docker-userns-remap", daemon.root / "driver", str(daemon.socket))
        image = ensure_artifacts(CACHE_DIR / "image")
        driver.setup(image.tarball, image.rootfs, image.digest)
        yield Remapped(
            daemon,
            driver,
            subordinate_range(Path("/etc/subuid"), REMAP_USER),
            subordinate_range(Path("/etc/subgid"), REMAP_USER),
        )


@pytest.fixture
def remapped_containers(remapped: Remapped, request: pytest.FixtureRequest) -> Iterator[Containers]:
    """Containers on the private daemon, removed after the test and proven gone (CLEAN-01)."""
    ledger, key = Ledger(), (request.node.nodeid, remapped.driver.name)
    containers = Containers(remapped.driver, ledger, key)
    yield containers
    containers.close()
    _, leftovers = ledger.check(key)
    assert not leftovers, f"left behind on the private daemon: {leftovers}"


def shared_dir(remapped: Remapped, owner: tuple[int, int]) -> Path:
    """A fresh host directory under the daemon's root, owned by `owner` (uid, gid)."""
    path = remapped.daemon.root / f"share-{secrets.token_hex(4)}"
    path.mkdir(mode=0o755)
    os.chown(path, *owner)
    return path


@pytest.mark.req("NS-USER-02")
def test_remapped_container_has_its_own_id_maps(
    remapped: Remapped, remapped_containers: Containers
) -> None:
    container = remapped_containers.start(ContainerSpec(command=SLEEP))
    assert host.ns_inode(container.pid, "user") != host.ns_inode("self", "user")
    for name, (start, count) in (("uid_map", remapped.uids), ("gid_map", remapped.gids)):
        lines = Path(f"/proc/{container.pid}/{name}").read_text().splitlines()
        assert [line.split() for line in lines] == [["0", str(start), str(count)]], name
    assert remapped.uids[1] == RANGE_LENGTH


@pytest.mark.req("NS-USER-03")
def test_daemon_state_lives_under_the_remapped_root(remapped: Remapped) -> None:
    (uid, _), (gid, _) = remapped.uids, remapped.gids
    state = remapped.daemon.root / "data" / f"{uid}.{gid}"
    st = state.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, gid, 0o710), oct(st.st_mode)


@pytest.mark.req("NS-USER-04")
def test_container_root_is_the_remapped_uid_on_the_host(
    remapped: Remapped, remapped_containers: Containers
) -> None:
    owner = (remapped.uids[0], remapped.gids[0])
    share = shared_dir(remapped, owner)
    spec = ContainerSpec(command=SLEEP, mounts=(Mount(str(share), "/data"),))
    container = remapped_containers.start(spec)
    uids = host.status(container.pid)["Uid"].split()
    assert uids == [str(owner[0])] * 4, f"host sees uids {uids}"
    assert attempt(remapped_containers, container, "caps")["uid"] == 0, "not root inside"
    assert attempt(remapped_containers, container, "write", "/data/made", "x") == {"ok": True}
    made = (share / "made").stat()
    assert (made.st_uid, made.st_gid) == owner


@pytest.mark.req("NS-USER-05")
def test_container_root_is_not_host_root(
    remapped: Remapped, remapped_containers: Containers
) -> None:
    share = shared_dir(remapped, (0, 0))
    (share / "root-owned").write_text("host\n")
    (share / "root-owned").chmod(0o644)
    spec = ContainerSpec(command=SLEEP, mounts=(Mount(str(share), "/host"),))
    container = remapped_containers.start(spec)
    root_file = "/host/root-owned"
    problems = [
        problem
        for args, expected in (
            (("write", root_file, "x"), errno.EACCES),
            (("try", "chown", root_file, "0", "0"), errno.EPERM),
            (("try", "mknod", "/tmp/cts-blk"), errno.EPERM),
        )
        if (problem := refused(attempt(remapped_containers, container, *args), expected))
    ]
    assert not problems, problems
    assert (share / "root-owned").read_text() == "host\n"
    joined = remapped_containers.run(ContainerSpec(command=probe("exit", "0"), network="host"))
    assert joined.exit_code != 0, "the host's network namespace was joined under userns-remap"
    assert "user namespaces" in joined.stderr, joined.stderr
