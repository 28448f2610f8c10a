"""Mount propagation of bind mounts: rprivate, rslave and rshared.

The host prepares the source as a shared mount of its own (a bind mount of a scratch directory
onto itself, `--make-shared`: Docker refuses rshared unless the source is on a shared mount,
and rslave unless it is on a shared or slave one). While the container runs, the host mounts
a tmpfs under the source, and the host mounts one under the target in the container's mount
namespace (nsenter: the container lacks CAP_SYS_ADMIN). Which of them crosses over is read
from both mount tables, with the peer group numbers of mountinfo's `shared:N` / `master:N`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures import nsenter
from fixtures.containers import Containers
from fixtures.mounts import HostMounts, mounted_at
from fixtures.probe import SLEEP
from fixtures.session import unique_name
from fixtures.targets.base import Container, ContainerSpec, Mount
from reference.linux.procfs import MountInfo

TARGET = "/mnt/prop"
# propagation → (a host mount under the source appears inside,
#                a mount made inside under the target appears on the host)
CROSSES: dict[str, tuple[bool, bool]] = {
    "rprivate": (False, False),
    "rslave": (True, False),
    "rshared": (True, True),
}
# How the container's copy relates to the host's peer group N of the source (and of every
# mount that propagates in): private has no tag, a slave is `master:N`, a peer `shared:N`.
TAG: dict[str, str | None] = {"rprivate": None, "rslave": "master", "rshared": "shared"}
# A bind mount without a propagation option, per target kind (the part of the name before
# ":"). Docker and podman make it rprivate; an OCI runtime takes what the bundle says, and a
# bundle mount without an option inherits the rootfs propagation (runc: rslave), so there the
# default is the bundle writer's choice, not the runtime's behaviour.
DEFAULT_PROPAGATION: dict[str, str | None] = {
    "docker": "rprivate",
    "podman": "rprivate",
    "oci": None,
}
MODES = [
    pytest.param(None, id="default", marks=pytest.mark.req("NS-MNT-02")),
    pytest.param("rprivate", marks=pytest.mark.req("NS-MNT-02")),
    pytest.param("rslave", marks=pytest.mark.req("NS-MNT-04")),
    pytest.param("rshared", marks=pytest.mark.req("NS-MNT-03")),
]


def effective(containers: Containers, requested: str | None) -> str:
    """The propagation the bind mount should have; skips where the target has no default."""
    if requested is not None:
        return requested
    kind = containers.driver.name.split(":", 1)[0]
    default = DEFAULT_PROPAGATION.get(kind, "rprivate")
    if default is None:
        pytest.skip(f"{kind} targets have no default bind propagation of their own")
    return default


def start_with_bind(containers: Containers, source: Path, propagation: str | None) -> Container:
    mount = Mount(str(source), TARGET, propagation=propagation)
    return containers.start(ContainerSpec(command=SLEEP, mounts=[mount]))


def assert_relation(inside: MountInfo, outside: MountInfo, propagation: str) -> None:
    """`inside` is the container's copy of the host mount `outside`, related as `propagation`
    says; `outside` is a shared mount, `shared:N`."""
    group = outside.optional["shared"]
    tag = TAG[propagation]
    relation = {k: v for k, v in inside.optional.items() if k in ("shared", "master")}
    if tag is None:
        assert group not in relation.values(), (
            f"{propagation}: {inside.mount_point} still receives from the host's peer group "
            f"{group}: {relation}"
        )
    else:
        assert relation.get(tag) == group, (
            f"{propagation}: expected {tag}:{group} on {inside.mount_point}, got {relation}"
        )


@pytest.mark.parametrize("requested", MODES)
@pytest.mark.needs("bind-mounts")
def test_host_mount_under_source_reaches_container(
    containers: Containers, tmp_path: Path, requested: str | None
) -> None:
    propagation = effective(containers, requested)
    with HostMounts() as mounts:
        source = mounts.shared_dir(tmp_path / "src")
        container = start_with_bind(containers, source, requested)
        bind = mounted_at(container.pid, TARGET)
        host_source = mounted_at("self", str(source))
        assert bind is not None, f"no bind mount at {TARGET}"
        assert host_source is not None, f"the host lost its mount at {source}"
        assert_relation(bind, host_source, propagation)

        tag = unique_name()
        late = mounts.tmpfs(source / "late", tag)
        seen = mounted_at(container.pid, f"{TARGET}/late")
        arrived = seen is not None and seen.source == tag
        assert arrived == CROSSES[propagation][0], (
            f"{propagation}: a mount made on the host under the source "
            f"{'reached' if arrived else 'did not reach'} the container"
        )
        if seen is not None and arrived:
            on_host = mounted_at("self", str(late))
            assert on_host is not None
            assert_relation(seen, on_host, propagation)


@pytest.mark.parametrize("requested", MODES)
@pytest.mark.needs("bind-mounts")
def test_container_mount_under_target_reaches_host(
    containers: Containers, tmp_path: Path, requested: str | None
) -> None:
    propagation = effective(containers, requested)
    with HostMounts() as mounts:
        source = mounts.shared_dir(tmp_path / "src")
        (source / "inner").mkdir()
        container = start_with_bind(containers, source, requested)
        tag = unique_name()
        mounts.adopt(source / "inner", tag)  # where it lands on the host, if it does
        nsenter.mount_tmpfs(container.pid, f"{TARGET}/inner", tag)
        made = mounted_at(container.pid, f"{TARGET}/inner")
        assert made is not None, f"nothing is mounted at {TARGET}/inner inside"
        assert made.source == tag, f"the mount was not made: {made}"
        on_host = mounted_at("self", str(source / "inner"))
        arrived = on_host is not None and on_host.source == tag
        assert arrived == CROSSES[propagation][1], (
            f"{propagation}: a mount made inside under the target "
            f"{'reached' if arrived else 'did not reach'} the host"
        )
