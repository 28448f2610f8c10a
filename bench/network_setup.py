"""Per-container network setup and teardown: refd against Docker, interleaved in one run.

What is timed, through each engine's API socket (no CLI start-up in the numbers):
  start   POST /containers/{id}/start of a created container (`probe sleep forever`)
  remove  DELETE /containers/{id}?force=1 of that running container
once with NetworkMode "bridge" (the default network: sandbox, veth pair, IPAM address, MAC,
routes, firewall) and once with "none", per engine, in an order shuffled per round. The
network's share is the difference of the medians, bridge minus none: setup in `start`,
teardown in `remove`. The engines are the suite's own drivers: the machine's dockerd (started
by `scripts/services` if none answers) and a private refd in a network namespace of its own
(fixtures.targets.reference), both with the suite's test image imported.

    sudo .venv/bin/python bench/network_setup.py [--rounds 20] [--seed 1]

It prints a table and the refd/docker ratios; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fixtures.image.build import ensure_artifacts  # noqa: E402
from fixtures.session import CACHE_DIR  # noqa: E402
from fixtures.targets import engine_api  # noqa: E402
from fixtures.targets.engine_cli import CliEngine, DockerDriver  # noqa: E402
from fixtures.targets.reference import ReferenceDriver  # noqa: E402

MODES = ("bridge", "none")
Sample = dict[tuple[str, str, str], list[float]]  # (engine, mode, phase) → seconds


def call(socket: str, method: str, path: str, body: object = None) -> tuple[float, bytes]:
    began = time.perf_counter()
    status, _, raw = engine_api.request(socket, method, path, body)
    took = time.perf_counter() - began
    if status >= 300:
        raise RuntimeError(f"{method} {path} on {socket}: HTTP {status}: {raw[:300]!r}")
    return took, raw


def one(engine: CliEngine, mode: str) -> tuple[float, float]:
    """(start, remove) seconds of one container in network mode `mode`."""
    socket = str(engine.engine_socket())
    body = {
        "Image": engine.image,
        "Cmd": ["/bin/probe", "sleep", "forever"],
        "HostConfig": {"NetworkMode": mode},
    }
    _, raw = call(socket, "POST", "/containers/create", body)
    cid = json.loads(raw)["Id"]
    try:
        start, _ = call(socket, "POST", f"/containers/{cid}/start")
    finally:
        remove, _ = call(socket, "DELETE", f"/containers/{cid}?force=1")
    return start, remove


def measure(engines: dict[str, CliEngine], rounds: int, warmup: int, seed: int) -> Sample:
    rng = random.Random(seed)
    samples: Sample = {}
    jobs = [(name, mode) for name in engines for mode in MODES]
    for number in range(warmup + rounds):
        rng.shuffle(jobs)
        for name, mode in jobs:
            start, remove = one(engines[name], mode)
            if number >= warmup:
                samples.setdefault((name, mode, "start"), []).append(start)
                samples.setdefault((name, mode, "remove"), []).append(remove)
    return samples


def report(samples: Sample, names: list[str]) -> None:
    def median_ms(key: tuple[str, str, str]) -> float:
        return statistics.median(samples[key]) * 1000

    print(f"{'engine':<10} {'phase':<7} {'bridge ms':>10} {'none ms':>9} {'network ms':>11}")
    network: dict[tuple[str, str], float] = {}
    for name in names:
        for phase in ("start", "remove"):
            bridge, none = median_ms((name, "bridge", phase)), median_ms((name, "none", phase))
            network[(name, phase)] = bridge - none
            print(f"{name:<10} {phase:<7} {bridge:>10.1f} {none:>9.1f} {bridge - none:>11.1f}")
    if "docker" in names and "refd" in names:
        for phase, label in (("start", "setup"), ("remove", "teardown")):
            ours, theirs = network[("refd", phase)], network[("docker", phase)]
            ratio = ours / theirs if theirs > 0 else float("nan")
            print(f"network {label}: refd {ours:.1f} ms, docker {theirs:.1f} ms, ratio {ratio:.2f}")


def engines_up(workdir: Path) -> tuple[dict[str, CliEngine], Callable[[], None]]:
    image = ensure_artifacts(CACHE_DIR / "image")
    refd = ReferenceDriver("bench-refd", workdir / "refd")
    docker = DockerDriver("bench-docker", workdir / "docker")
    started: list[CliEngine] = []
    try:
        for engine in (refd, docker):
            engine.setup(image.tarball, image.rootfs, image.digest)
            started.append(engine)
    except BaseException:
        for made in started:
            made.teardown()
        raise

    def down() -> None:
        for made in started:
            made.teardown()

    return {"refd": refd, "docker": docker}, down


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cts-netbench-") as tmp:
        engines, down = engines_up(Path(tmp))
        try:
            samples = measure(engines, args.rounds, args.warmup, args.seed)
        finally:
            down()
    print(f"{args.rounds} rounds (+{args.warmup} warm-up), order shuffled per round")
    report(samples, list(engines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
