"""Start-up and run time of `refrun` against `runc` on one bundle (a benchmark, not a test).

    .venv/bin/python bench/refrun_vs_runc.py [--rounds 30] [--warmup 3]
        [--runtime NAME=PATH ...] [--seed N]

One bundle is built from the suite's test image (fixtures.image.build.ensure_artifacts) with
the process `/bin/probe exit 0`. Each round runs every runtime's `run` once, in an order
shuffled per round, so that load from other work on the machine falls on all of them alike;
the first --warmup rounds are not counted. Every call gets a fresh container id, each runtime
its own --root under a temporary directory, and anything left behind is deleted at the end.

Then the same for `state ID` on one created (not started) container per runtime: that is the
start-up cost of the CLI itself, paid on every call a container engine makes.

Printed: min / median / p90 in milliseconds per runtime and command, and each runtime's median
divided by the first runtime's (runc by default). Medians and ratios are what to compare;
absolute numbers depend on the load of the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fixtures.image.build import ensure_artifacts  # noqa: E402
from reference.oci.default import default_spec  # noqa: E402


def write_bundle(directory: Path, rootfs: Path) -> None:
    """A runc-spec-like config.json running the probe; the rootfs is shared and read-only."""
    config = default_spec(["/bin/probe", "exit", "0"])
    process = config["process"]
    assert isinstance(process, dict)
    process["terminal"] = False
    config["root"] = {"path": str(rootfs), "readonly": True}
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps(config, indent=2))


class Runtime:
    def __init__(self, name: str, path: str, workdir: Path, bundle: Path) -> None:
        self.name = name
        self.path = path
        self.root = workdir / f"root-{name}"
        self.bundle = bundle
        self.serial = 0

    def cli(self, *args: str) -> list[str]:
        return [self.path, "--root", str(self.root), *args]

    def new_id(self) -> str:
        self.serial += 1
        return f"bench-{self.name}-{os.getpid()}-{self.serial}"

    def call(self, *args: str) -> float:
        """Run one command; its wall time in milliseconds. A failure stops the benchmark."""
        # stderr goes to a file, not a pipe: after `create` the container's init holds the
        # runtime's stdio, and reading a pipe to its end would wait for the container.
        with tempfile.TemporaryFile() as err:
            t0 = time.perf_counter_ns()
            done = subprocess.run(
                self.cli(*args), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=err, check=False,
            )  # fmt: skip
            elapsed = (time.perf_counter_ns() - t0) / 1e6
            if done.returncode != 0:
                err.seek(0)
                raise SystemExit(f"{self.name} {' '.join(args)}: exit {done.returncode}: "
                                 f"{err.read().decode(errors='replace').strip()}")  # fmt: skip
        return elapsed

    def run(self) -> float:
        cid = self.new_id()
        # No cgroupsPath in the bundle: each runtime names the cgroup after the container id.
        return self.call("run", "--bundle", str(self.bundle), cid)

    def cleanup(self) -> None:
        done = subprocess.run(self.cli("list", "-q"), capture_output=True, text=True, check=False)
        for cid in done.stdout.split():
            subprocess.run(self.cli("delete", "--force", cid), capture_output=True, check=False)


def stats(samples: list[float]) -> tuple[float, float, float]:
    s = sorted(samples)
    median = s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2
    p90 = s[min(len(s) - 1, round(0.9 * (len(s) - 1)))]
    return s[0], median, p90


def measure(
    runtimes: list[Runtime], op: str, rounds: int, warmup: int, rng: random.Random,
    args: dict[str, list[str]] | None = None,
) -> dict[str, list[float]]:  # fmt: skip
    samples: dict[str, list[float]] = {rt.name: [] for rt in runtimes}
    for i in range(warmup + rounds):
        order = runtimes[:]
        rng.shuffle(order)
        for rt in order:
            ms = rt.run() if op == "run" else rt.call(*(args or {})[rt.name])
            if i >= warmup:
                samples[rt.name].append(ms)
    return samples


def report(title: str, samples: dict[str, list[float]]) -> None:
    names = list(samples)
    base = stats(samples[names[0]])[1]
    print(f"\n{title}  ({len(samples[names[0]])} counted rounds)")
    print(f"  {'runtime':<12} {'min':>8} {'median':>8} {'p90':>8} {'ratio':>7}")
    for name in names:
        lo, med, p90 = stats(samples[name])
        print(f"  {name:<12} {lo:8.1f} {med:8.1f} {p90:8.1f} {med / base:6.2f}x")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument(
        "--runtime", action="append", default=[], metavar="NAME=PATH",
        help="runtimes to compare, the first is the baseline "
             "(default: runc=runc refrun=<repo>/bin/refrun)",
    )  # fmt: skip
    p.add_argument("--skip-state", action="store_true", help="only measure `run`")
    opts = p.parse_args(argv)
    specs = opts.runtime or ["runc=runc", f"refrun={REPO / 'bin' / 'refrun'}"]
    if os.geteuid() != 0:
        raise SystemExit("needs root (both runtimes create namespaces and cgroups)")
    rng = random.Random(opts.seed)
    art = ensure_artifacts(REPO / ".cache" / "image")
    workdir = Path(tempfile.mkdtemp(prefix="refrun-bench-"))
    bundle = workdir / "bundle"
    write_bundle(bundle, art.rootfs)
    runtimes = []
    for spec in specs:
        name, _, path = spec.partition("=")
        runtimes.append(Runtime(name, shutil.which(path) or path, workdir, bundle))
    print(f"bundle {bundle} (rootfs {art.rootfs}); load average {os.getloadavg()}")
    try:
        report("run  (start to exit of `/bin/probe exit 0`, ms)",
               measure(runtimes, "run", opts.rounds, opts.warmup, rng))  # fmt: skip
        if not opts.skip_state:
            state_args: dict[str, list[str]] = {}
            for rt in runtimes:
                cid = rt.new_id()
                rt.call("create", "--bundle", str(bundle), cid)
                state_args[rt.name] = ["state", cid]
            samples = measure(runtimes, "state", opts.rounds, opts.warmup, rng, state_args)
            report("state  (CLI start-up on a created container, ms)", samples)
    finally:
        for rt in runtimes:
            rt.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
        print(f"\nload average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
