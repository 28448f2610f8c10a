"""Shared by the refrun end-to-end tests: a private --root, a bundle copied from the test
image, the refrun CLI, and the host-side leak check (cgroups, state dir, mounts by id)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference.oci.default import default_spec

REPO = Path(__file__).resolve().parents[3]
REFRUN = REPO / "bin" / "refrun"
CGROUP_ROOT = Path("/sys/fs/cgroup")


@pytest.fixture(scope="module")
def image_rootfs() -> Path:
    from fixtures.image.build import ensure_artifacts

    return ensure_artifacts(REPO / ".cache" / "image").rootfs


class Env:
    """A private --root, a bundle, and the ids to clean up."""

    def __init__(self, tmp: Path, image: Path) -> None:
        self.root = tmp / "state"
        self.bundle = tmp / "bundle"
        shutil.copytree(image, self.bundle / "rootfs", symlinks=True)
        self.ids: list[str] = []

    def new_id(self) -> str:
        cid = f"cts-refrun-{secrets.token_hex(4)}"
        self.ids.append(cid)
        return cid

    def config(self, *argv: str, cid: str, **linux: object) -> dict[str, object]:
        config = default_spec(list(argv))
        process = config["process"]
        assert isinstance(process, dict)
        process["terminal"] = False
        section = config["linux"]
        assert isinstance(section, dict)
        section["cgroupsPath"] = f"/{cid}"
        section.update(linux)
        return config

    def write(self, config: dict[str, object]) -> None:
        (self.bundle / "config.json").write_text(json.dumps(config))

    def refrun(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(REFRUN), "--root", str(self.root), *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def detached(self, *argv: str) -> int:
        """`run -d`/`create` with stdio to a file (a pipe would stay open in the container)."""
        with open(self.bundle.parent / "container.log", "ab") as log:
            done = subprocess.run(
                [str(REFRUN), "--root", str(self.root), *argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                timeout=60,
            )
        return done.returncode

    def state(self, cid: str) -> dict[str, object]:
        done = self.refrun("state", cid)
        assert done.returncode == 0, done.stderr
        state = json.loads(done.stdout)
        assert isinstance(state, dict)
        return state

    def leftovers(self, cid: str) -> list[str]:
        found = [str(p) for p in CGROUP_ROOT.glob(f"*/{cid}")]
        found += [str(p) for p in CGROUP_ROOT.glob(f"*/**/{cid}") if p.is_dir()]
        if (self.root / cid).exists():
            found.append(f"state dir {self.root / cid}")
        found += [ln for ln in Path("/proc/self/mountinfo").read_text().splitlines() if cid in ln]
        return sorted(set(found))


@pytest.fixture
def env(tmp_path: Path, image_rootfs: Path) -> Iterator[Env]:
    e = Env(tmp_path, image_rootfs)
    try:
        yield e
    finally:
        for cid in e.ids:
            e.refrun("delete", "--force", cid)


def wait_status(env: Env, cid: str, status: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while env.state(cid)["status"] != status:
        assert time.monotonic() < deadline, f"{cid} never became {status}"
        time.sleep(0.05)


def ns(pid: int | str, kind: str) -> int:
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


def cgroup_dir(pid: int, controller: str) -> Path:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return CGROUP_ROOT / controller / path.lstrip("/")
    raise AssertionError(f"no {controller} cgroup for {pid}")
