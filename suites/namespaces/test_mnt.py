"""Mount namespace: the container has its own mount table, and a mount made in it stays there.

The container lacks CAP_SYS_ADMIN, so the host mounts on its behalf in its mount namespace
(nsenter); the mount tables are read from the host side (/proc/<pid>/mountinfo).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures import host, nsenter
from fixtures.containers import Containers
from fixtures.mounts import HostMounts, mounted_at, mounts_of
from fixtures.probe import SLEEP
from fixtures.session import unique_name
from fixtures.targets.base import ContainerSpec

TARGET = "/mnt"  # exists in the test image


@pytest.mark.req("NS-MNT-01")
def test_mount_table_is_the_containers_own(containers: Containers) -> None:
    container = containers.start(ContainerSpec(command=SLEEP))
    inside, outside = mounts_of(container.pid), mounts_of("self")
    # A new mount namespace copies every mount under a new id; a shared one has the same ids.
    shared_ids = {m.mount_id for m in inside} & {m.mount_id for m in outside}
    assert not shared_ids, f"the container shares mounts {sorted(shared_ids)} with the host"
    root_inside, root_outside = mounted_at(container.pid, "/"), mounted_at("self", "/")
    assert root_inside is not None, "the container has no root mount"
    assert root_outside is not None, "the host has no root mount"
    assert (root_inside.major, root_inside.minor, root_inside.root) != (
        root_outside.major,
        root_outside.minor,
        root_outside.root,
    ), f"the container's root is the host's: {root_inside}"


@pytest.mark.req("NS-MNT-01")
def test_mount_made_inside_stays_inside(containers: Containers) -> None:
    container = containers.start(ContainerSpec(command=SLEEP))
    if host.ns_inode(container.pid, "mnt") == host.ns_inode("self", "mnt"):
        pytest.fail("the container shares the host's mount namespace")  # would mount on the host
    tag = unique_name()
    with HostMounts() as cleanup:
        cleanup.adopt(Path(TARGET), tag)  # should it wrongly reach the host's /mnt
        nsenter.mount_tmpfs(container.pid, TARGET, tag)
        mine = mounted_at(container.pid, TARGET)
        assert mine is not None, f"nothing is mounted at {TARGET} inside"
        assert mine.source == tag, f"the mount was not made: {mine}"
        leaked = [m for m in mounts_of("self") if m.source == tag]
        assert not leaked, f"a mount made inside the container reached the host: {leaked}"
