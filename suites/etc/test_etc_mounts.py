"""/etc/hostname, /etc/hosts and /etc/resolv.conf are bind mounts from the runtime's
per-container directory on the host.

Witness: the container's mount table (read from the host) has a mount at each of the three
paths; its source, found through the host's own mount table (device + path within that
filesystem), is the very file the container sees (same device and inode through
/proc/<pid>/root). Engines that publish the paths (inspect's HostnamePath, HostsPath,
ResolvConfPath) must name those same files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.containers import Containers
from fixtures.errors import TargetError
from fixtures.etcfiles import ETC_FILES, etc_path, host_source, same_file
from fixtures.mounts import mounted_at
from fixtures.probe import SLEEP
from fixtures.targets.base import Container, ContainerSpec

INSPECT_KEYS = {"hostname": "HostnamePath", "hosts": "HostsPath", "resolv.conf": "ResolvConfPath"}


def mount_sources(container: Container) -> dict[str, Path]:
    """/etc file name → the host file bind-mounted there (asserting it is one)."""
    sources = {}
    for name in ETC_FILES:
        entry = mounted_at(container.pid, f"/etc/{name}")
        assert entry is not None, f"/etc/{name} is not a mount point in {container.name}"
        source = host_source(entry)
        assert source is not None, (
            f"no host path for the /etc/{name} mount of {container.name} "
            f"(root {entry.root!r} on device {entry.major}:{entry.minor})"
        )
        assert source.is_file(), f"/etc/{name} is mounted from {source}, not a regular file"
        assert same_file(source, etc_path(container.pid, name)), (
            f"the container's /etc/{name} is not the host file {source}"
        )
        sources[name] = source
    return sources


@pytest.mark.req("ETC-01")
@pytest.mark.needs("etc-files")
def test_etc_files_are_bind_mounts_from_a_per_container_directory(containers: Containers) -> None:
    first = containers.start(ContainerSpec(command=SLEEP))
    second = containers.start(ContainerSpec(command=SLEEP))
    directories = []
    for container in (first, second):
        sources = mount_sources(container)
        parents = {path.parent for path in sources.values()}
        assert len(parents) == 1, f"{container.name}: the files come from several places: {sources}"
        directories.append(parents.pop())
    assert directories[0] != directories[1], (
        f"two containers share the directory their /etc files come from: {directories[0]}"
    )


@pytest.mark.req("ETC-01")
@pytest.mark.needs("etc-files")
def test_engine_names_the_mounted_files(containers: Containers) -> None:
    container = containers.start(ContainerSpec(command=SLEEP))
    try:
        document = containers.driver.inspect(container)
    except TargetError as exc:
        pytest.skip(f"the target does not publish an inspect document: {exc}")
    published = {name: document.get(key) for name, key in INSPECT_KEYS.items()}
    if not any(published.values()):
        pytest.skip("the inspect document names none of HostnamePath, HostsPath, ResolvConfPath")
    for name, source in mount_sources(container).items():
        path = published[name]
        assert path, f"inspect has no {INSPECT_KEYS[name]}"
        assert same_file(Path(path), source), (
            f"inspect's {INSPECT_KEYS[name]} {path} is not {source}, mounted at /etc/{name}"
        )
