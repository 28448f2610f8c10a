"""A private refd for the engine's own end-to-end tests, started with the suite's driver
(fixtures.targets.reference), the test image imported; helpers to drive it through refctl,
the API, and the host-side leak checks (mounts, cgroups, directories)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fixtures.image.build import ensure_artifacts
from fixtures.session import CACHE_DIR
from fixtures.targets import engine_api
from fixtures.targets.reference import REFCTL, ReferenceDriver

REPO = Path(__file__).resolve().parents[3]


class Refd:
    def __init__(self, driver: ReferenceDriver) -> None:
        self.driver = driver
        self.cgroup_parent = str(driver.daemon_config["cgroup-parent"]).strip("/")
        self.root = driver.root
        self.socket = driver.socket
        self.image = driver.image

    @property
    def data(self) -> Path:
        return self.root / "data"

    def pid(self) -> int:
        return int((self.root / "refd.pid").read_text())

    def ctl(
        self, *args: str, timeout: float = 60, stdin: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(REFCTL), "-H", f"unix://{self.socket}", *args],
            capture_output=True,
            text=stdin is None,
            input=stdin,
            timeout=timeout,
        )

    def docker(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "-H", f"unix://{self.socket}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def api(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        conn = engine_api.UnixHTTPConnection(str(self.socket))
        try:
            conn.request(
                method,
                path,
                body=body,
                headers={"Content-Type": "application/json"} if body else {},
            )
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        return response.status, json.loads(data) if data.strip() else None

    def container_ids(self) -> set[str]:
        _, listed = self.api("GET", "/containers/json?all=1")
        return {c["Id"] for c in listed}

    # -- what a container leaves on the host --------------------------------------------
    def mounts(self) -> list[str]:
        prefix = str(self.root)
        return [
            line for line in Path("/proc/self/mountinfo").read_text().splitlines() if prefix in line
        ]

    def cgroups(self) -> list[Path]:
        found = []
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            parent = hierarchy / self.cgroup_parent
            if parent.is_dir():
                found += [p for p in parent.iterdir() if p.is_dir()]
        return found

    def snapshot_keys(self) -> set[str]:
        overlay = self.data / "overlay"
        return {p.name for p in overlay.iterdir() if not p.name.startswith(".")}

    def leftovers(self, cid: str) -> list[str]:
        found = [f"mount {m}" for m in self.mounts() if cid in m]
        found += [f"cgroup {p}" for p in self.cgroups() if p.name == cid]
        for path in (
            self.data / "containers" / cid,
            self.data / "overlay" / cid,
            self.root / "exec" / "containers" / cid,
        ):
            if path.exists():
                found.append(f"directory {path}")
        runtime_state = self.root / "exec" / "runtime"
        if runtime_state.is_dir():
            found += [f"runtime state {p}" for p in runtime_state.glob(f"*/{cid}")]
        return found


@contextmanager
def running_refd(workdir: Path, config: dict[str, Any] | None = None) -> Iterator[Refd]:
    driver = ReferenceDriver("reference", workdir)
    # A cgroup parent of its own: concurrent daemons' containers are not this one's leaks.
    driver.daemon_config = {"cgroup-parent": f"/refd-test-{secrets.token_hex(4)}", **(config or {})}
    image = ensure_artifacts(CACHE_DIR / "image")
    try:
        driver.setup(image.tarball, image.rootfs, image.digest)
        yield Refd(driver)
    finally:
        driver.teardown()


def needs_root() -> bool:
    return os.geteuid() != 0
