"""The container's root filesystem is an overlay: the image's layers below, shared by every
container of the image, and an upper directory of the container's own on top.

Witness: the container's `/` line in /proc/<pid>/mountinfo, read from the host (the overlay's
super options name host directories), and the image's identity file found in a lower layer.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fixtures.containers import Containers
from fixtures.layers import IMAGE_ID_FILE, root_overlay
from fixtures.probe import SLEEP
from fixtures.targets.base import ContainerSpec


@pytest.mark.req("COW-03")
@pytest.mark.needs("image-store")
def test_root_is_an_overlay_over_the_shared_image_layers(containers: Containers) -> None:
    first = containers.start(ContainerSpec(command=SLEEP))
    second = containers.start(ContainerSpec(command=SLEEP))
    overlays = [root_overlay(c.pid) for c in (first, second)]
    for overlay in overlays:
        assert overlay.lowerdirs, "the overlay has no lower layer"
        absent = [p for p in (*overlay.lowerdirs, overlay.upperdir) if not p.is_dir()]
        assert not absent, f"overlay directories absent on the host: {absent}"
    lowers = [{os.path.realpath(p) for p in o.lowerdirs} for o in overlays]
    uppers = [os.path.realpath(o.upperdir) for o in overlays]
    assert uppers[0] != uppers[1], "two containers share one upper directory"
    assert not {*uppers} & (lowers[0] | lowers[1]), "an upper directory is also a lower layer"
    shared = lowers[0] & lowers[1]
    assert shared, "two containers of one image share no lower layer"
    seen = Path(f"/proc/{first.pid}/root{IMAGE_ID_FILE}").read_bytes()
    holders = [
        lower
        for lower in shared
        if (Path(lower) / IMAGE_ID_FILE.lstrip("/")).is_file()
        and (Path(lower) / IMAGE_ID_FILE.lstrip("/")).read_bytes() == seen
    ]
    assert holders, f"no shared lower layer holds the image's {IMAGE_ID_FILE}"
