"""The /etc files are not part of the container's layer: writes to them go to the bind-mounted
host files, and a committed image holds none of them (its layer is read from `save`'s tarball).
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from fixtures.containers import Containers
from fixtures.etcfiles import ETC_FILES, host_source
from fixtures.layers import committed_layer
from fixtures.mounts import mounted_at
from fixtures.probe import SLEEP
from fixtures.targets.base import ContainerSpec


@pytest.mark.req("ETC-16")
@pytest.mark.needs("etc-files", "image-store", "exec")
def test_committed_layer_holds_none_of_the_etc_files(
    containers: Containers, tmp_path: Path
) -> None:
    container = containers.start(ContainerSpec(command=SLEEP))
    entry = f"198.51.100.9 cts-{secrets.token_hex(4)}.test"
    marker = f"cts-etc-{secrets.token_hex(4)}"
    # A change of every file (so a runtime that copied them into the rootfs would commit
    # them), plus one ordinary file as proof that the commit captured the layer at all.
    script = "".join(f"echo '# {entry}' >> /etc/{name}; " for name in ETC_FILES)
    done = containers.exec(container, ["sh", "-c", f"{script}echo x > /{marker}"])
    assert done.exit_code == 0, done.stderr
    for name in ETC_FILES:
        mount = mounted_at(container.pid, f"/etc/{name}")
        source = host_source(mount) if mount else None
        assert source is not None, f"/etc/{name} is not bind-mounted from a host file"
        assert entry in source.read_text(), f"the write to /etc/{name} did not reach {source}"
    layer = committed_layer(containers.driver, container, tmp_path)
    assert marker in layer, f"the commit did not capture /{marker}: {sorted(layer)}"
    found = [f"etc/{name}" for name in ETC_FILES if f"etc/{name}" in layer]
    assert not found, f"the committed layer holds {found}"
