"""blkio: --blkio-weight lands in the weight file the kernel offers.

Kernels since 5.0 have no CFQ, so v1 cgroups carry BFQ's blkio.bfq.weight (and only below the
hierarchy's root) instead of blkio.weight. On v1, engines decide whether the kernel supports
block I/O weights by looking for blkio.weight at the hierarchy's root before they pass the
weight on; when it is missing they discard the flag with a warning ("Your kernel does not
support Block I/O weight ... Weight discarded.", CG-31). An OCI runtime writes what
config.json says.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fixtures import cgroupfs, host
from fixtures.cgroupfs import Cgroup, spec
from fixtures.containers import Containers
from fixtures.probe import SLEEP
from fixtures.targets.base import Driver

WEIGHT = 300


def _same(weight: int) -> int:
    return weight


def _io_weight(weight: int) -> int:  # blkio's 10..1000 onto io.weight's 1..10000 (runc)
    return 1 + (weight - 10) * 9999 // 990


# Weight files by mode, preferred first (the runtime writes the first that exists), and the
# value each holds for --blkio-weight W.
WEIGHT_FILES: dict[cgroupfs.Mode, tuple[tuple[str, Callable[[int], int]], ...]] = {
    "v1": (("blkio.weight", _same), ("blkio.bfq.weight", _same)),
    "v2": (("io.bfq.weight", _same), ("io.weight", _io_weight)),
}
HIERARCHY: dict[cgroupfs.Mode, str] = {"v1": "blkio", "v2": ""}
# The file at the hierarchy's root whose presence an engine takes for support: Docker 20.10 and
# podman 4.3 probe CFQ's blkio.weight on v1 (so BFQ-only kernels get the flag discarded); on v2
# the io controller being enabled is enough. An OCI runtime probes nothing.
SUPPORT_PROBE: dict[cgroupfs.TargetKind, dict[cgroupfs.Mode, str]] = {
    "engine": {"v1": "blkio.weight"},
    "oci": {},
}


@pytest.mark.req("CG-22")
@pytest.mark.needs("blkio")
def test_blkio_weight_is_written(containers: Containers, target: Driver) -> None:
    mode = cgroupfs.mode()
    root = host.cgroup_mounts().get(HIERARCHY[mode])
    if root is None:
        pytest.skip(f"no {HIERARCHY[mode] or 'io'} controller mounted on this host")
    probe = SUPPORT_PROBE[cgroupfs.target_kind(target)].get(mode)
    if probe is not None and not (root / probe).exists():
        pytest.skip(
            f"{root / probe} is absent (no CFQ on this kernel): engines discard "
            "--blkio-weight with a warning, so there is no weight to check"
        )
    container = containers.start(spec(SLEEP, blkio_weight=WEIGHT))
    directory = Cgroup(container.pid).dirs[HIERARCHY[mode]]
    offered = [(directory / n, f) for n, f in WEIGHT_FILES[mode] if (directory / n).exists()]
    if not offered:
        pytest.skip(f"the kernel offers no block I/O weight file in {directory} (no CFQ/BFQ)")
    path, expected = offered[0]
    # BFQ's and v2's files read "default W" (then per-device lines); CFQ's is the bare number.
    assert path.read_text().split("\n")[0].split()[-1] == str(expected(WEIGHT)), path
