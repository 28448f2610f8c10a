"""refd against Docker (and podman) on one host: latency, memory, burst (a benchmark, not a test).

    .venv/bin/python bench/refd_vs_docker.py [--rounds 20] [--warmup 2] [--containers 10]
        [--burst 50] [--burst-rounds 3] [--seed N] [--no-podman] [--engines docker,refd]

Engines, all fed the suite's test image (fixtures.image.build.ensure_artifacts → image.tar,
`import`ed into each as cts-bench:<digest>):

- docker: the daemon on /var/run/docker.sock. If none answers, `scripts/services start`
  starts one and `scripts/services stop` stops it at the end; one that was already running is
  left alone (only the bench's containers and its image tag are removed);
- podman (if installed): with the suite's containers.conf (runc, cgroupfs) and a private
  storage root, run root and tmpdir under the bench's temporary directory;
- refd: a private daemon started as the suite's reference target does
  (fixtures.targets.reference: own data-root, exec-root and socket, setsid), stopped by PID
  and purged (`refd --purge`) at the end.

Measured, with the engines interleaved in one run (order shuffled per round, --seed):

1. latency: wall time of `run --rm --network none IMAGE true`, from spawning the CLI to its
   exit (create, start, attach, the container's run and exit, removal). A second row uses
   the default network if refd gives containers more than `lo` (the bridge), else it is
   skipped with the reason;
2. memory: --containers idle `run -d ... sleep` containers per engine; the PSS
   (/proc/PID/smaps_rollup) the engine added on the host for them, divided by their number.
   Counted: the container processes (the init from inspect and its descendants); every new
   process that names a container id on its command line (containerd-shim, conmon) or
   descends from a daemon; and the growth of the engine's long-lived daemons (dockerd and
   containerd; refd; podman has none) against a baseline taken after a warm-up container;
3. burst: --burst `run -d ... sleep` calls issued at once by as many threads, timed until all
   of them report running (`ps --filter status=running`); then `rm -f` of all of them in one
   call, timed too.

Printed: per engine min / median / p90 (or the PSS columns) and the ratio of each engine to
docker from the same run. Nothing is asserted. Everything is cleaned up on exit, Ctrl-C or
SIGTERM: the bench's containers (label cts-bench=<pid>), its image tags, the private podman
root and refd, and dockerd if the bench started it.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fixtures.image.build import ensure_artifacts  # noqa: E402
from fixtures.targets.engine_cli import PODMAN_CONF  # noqa: E402

SERVICES = REPO / "scripts" / "services"
IMAGE_REPO = "cts-bench"
SLEEP = ("sleep", "1000000")
MIB = 1024 * 1024


class BenchError(Exception):
    pass


def stats(samples: Sequence[float]) -> tuple[float, float, float]:
    """min, median, p90 (nearest rank)."""
    s = sorted(samples)
    n = len(s)
    median = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    return s[0], median, s[min(n - 1, round(0.9 * (n - 1)))]


# -- the host side: processes and their PSS ---------------------------------------------------
class Proc:
    __slots__ = ("cmdline", "comm", "pid", "ppid", "start")

    def __init__(self, pid: int, ppid: int, start: int, comm: str, cmdline: str) -> None:
        self.pid, self.ppid, self.start, self.comm, self.cmdline = pid, ppid, start, comm, cmdline


def processes() -> dict[int, Proc]:
    table: dict[int, Proc] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry)
        table[pid] = Proc(
            pid,
            int(fields[1]),
            int(fields[19]),
            comm,
            raw.replace(b"\0", b" ").decode(errors="replace"),
        )
    return table


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0  # gone, or a kernel thread


def daemons_pss(pids: set[int], samples: int = 5, interval: float = 0.2) -> int:
    """The daemons' PSS (KiB), the median of a few readings: a daemon's PSS moves for a moment
    while it has children sharing its pages or frees memory after a request."""
    readings = []
    for i in range(samples):
        if i:
            time.sleep(interval)
        readings.append(sum(pss_kib(pid) for pid in pids))
    return sorted(readings)[len(readings) // 2]


def descendants(table: dict[int, Proc], roots: set[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for p in table.values():
        children.setdefault(p.ppid, []).append(p.pid)
    seen: set[int] = set()
    todo = [r for r in roots if r in table]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children.get(pid, ()))
    return seen


# -- engines -------------------------------------------------------------------------------------
class Engine:
    name = ""
    rm_flags: Sequence[str] = ()  # podman's rm -f stops with a 10 s grace period unless -t 0

    def __init__(self, workdir: Path, label: str) -> None:
        self.workdir = workdir
        self.label = label  # cts-bench=<pid>: every container the bench makes carries it
        self.image = ""
        self.imported = False

    def cli(self, *args: str) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str] | None:
        return None

    def call(self, *args: str, timeout: float = 300, check: bool = True) -> tuple[float, str]:
        """Runs the CLI; (wall seconds, stdout). Output goes to files, not pipes, so that no
        process the engine leaves behind can hold the bench on a pipe."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            t0 = time.perf_counter()
            done = subprocess.run(
                self.cli(*args),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=self.env(),
                timeout=timeout,
                check=False,
            )
            elapsed = time.perf_counter() - t0
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode(errors="replace")
            if check and done.returncode != 0:
                message = err.read().decode(errors="replace").strip()
                raise BenchError(f"{self.name} {' '.join(args)}: exit {done.returncode}: {message}")
        return elapsed, stdout

    def daemons(self) -> set[int]:
        """The engine's long-lived processes, whose growth counts against its containers."""
        return set()

    def setup(self, tarball: Path, tag: str) -> None:
        self.image = self.image_prefix() + f"{IMAGE_REPO}:{tag}"
        _, listed = self.call("images", "-q", self.image, check=False)
        if not listed.strip():
            self.call("import", str(tarball), f"{IMAGE_REPO}:{tag}")
            self.imported = True

    def image_prefix(self) -> str:
        return ""

    def run_flags(self, network: str | None = "none") -> list[str]:
        net = ["--network", network] if network else []
        return ["--pull=never", "--label", self.label, *net]

    def ours(self, running: bool = False) -> list[str]:
        status = ["--filter", "status=running"] if running else []
        _, out = self.call(
            "ps", "-aq", "--no-trunc", "--filter", f"label={self.label}", *status, check=False
        )
        return out.split()

    def remove(self, ids: Sequence[str]) -> None:
        if ids:
            with contextlib.suppress(subprocess.TimeoutExpired):  # remove_ours tries again
                self.call("rm", "-f", *self.rm_flags, *ids, check=False)

    def remove_ours(self, settle: float = 2.0, limit: float = 120.0) -> None:
        """Remove every container of the bench, until none has shown up for `settle` seconds:
        after an interruption the daemon may still be creating some for CLIs that are gone."""
        deadline = time.monotonic() + limit
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            try:
                ids = self.ours()
            except subprocess.TimeoutExpired:
                ids = []
            if ids:
                self.remove(ids)
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle:
                return
            time.sleep(0.2)

    def teardown(self) -> None:
        self.remove_ours()
        if self.imported:
            self.call("rmi", self.image, check=False)


class Docker(Engine):
    name = "docker"

    def __init__(self, workdir: Path, label: str) -> None:
        super().__init__(workdir, label)
        self.started = False

    def cli(self, *args: str) -> list[str]:
        return ["docker", "-H", "unix:///var/run/docker.sock", *args]

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}

    def answers(self) -> bool:
        try:
            done = subprocess.run(
                self.cli("version", "-f", "{{.Server.Version}}"),
                capture_output=True,
                env=self.env(),
                timeout=10,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    def setup(self, tarball: Path, tag: str) -> None:
        if not self.answers():
            print("docker: no daemon answers; scripts/services start", flush=True)
            self.started = True  # set before: a failed start is still ours to stop
            subprocess.run([str(SERVICES), "start"], check=True)
        super().setup(tarball, tag)

    def daemons(self) -> set[int]:
        return {p.pid for p in processes().values() if p.comm in ("dockerd", "containerd")}

    def teardown(self) -> None:
        try:
            super().teardown()  # also when `version` is slow: a busy daemon still removes
        finally:
            if self.started:
                subprocess.run([str(SERVICES), "stop"], check=False)


class Podman(Engine):
    name = "podman"
    rm_flags = ("-t", "0")

    def __init__(self, workdir: Path, label: str) -> None:
        super().__init__(workdir, label)
        self.existed: set[Path] = set()
        self.root = workdir / "podman"
        self.root.mkdir()
        self.conf = self.root / "containers.conf"
        self.conf.write_text(PODMAN_CONF)

    def cli(self, *args: str) -> list[str]:
        r = self.root
        return [
            "podman",
            "--root",
            f"{r}/storage",
            "--runroot",
            f"{r}/run",
            "--tmpdir",
            f"{r}/tmp",
            *args,
        ]

    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.conf)}

    def image_prefix(self) -> str:
        return "localhost/"

    # What podman's default network (CNI) leaves on the host after its last container: the
    # bridge and host-local's address files. Removed at the end if the bench made them.
    LEFTOVERS = (Path("/sys/class/net/cni-podman0"), Path("/var/lib/cni/networks/podman"))

    def setup(self, tarball: Path, tag: str) -> None:
        self.existed = {p for p in self.LEFTOVERS if p.exists()}
        super().setup(tarball, tag)

    def teardown(self) -> None:
        try:
            self.remove_ours()
            self.call("rmi", "-af", check=False)  # the private store holds only our image
        finally:
            unmount_below(self.root)
            subprocess.run(["rm", "-rf", "--one-file-system", str(self.root)], check=False)
            bridge, addresses = self.LEFTOVERS
            # Only if nothing else (another podman) has joined it meanwhile.
            if (
                bridge not in self.existed
                and bridge.exists()
                and not any((bridge / "brif").iterdir())
            ):
                subprocess.run(["ip", "link", "delete", bridge.name], check=False)
            if addresses not in self.existed and addresses.exists() and not bridge.exists():
                shutil.rmtree(addresses, ignore_errors=True)


class Refd(Engine):
    """A private refd, started as the suite's reference target starts one
    (fixtures/targets/reference.py) but self-contained here, so that the bench does not follow
    that driver's test-only machinery: its own data-root, exec-root, socket and pidfile under
    the bench's directory, and its own network namespace (an "engine host", as the driver
    gives it: its default bridge refd0 then meets neither docker0 nor the host's firewall);
    `setsid -f`, stopped by PID, then `refd --purge` on the same state in the same namespace,
    unmounted, deleted, and the namespace deleted."""

    name = "refd"

    def __init__(self, workdir: Path, label: str) -> None:
        super().__init__(workdir, label)
        self.root = workdir / "refd"
        self.socket = self.root / "refd.sock"
        self.netns = f"cts-bench-{os.getpid()}-refd"

    def cli(self, *args: str) -> list[str]:
        return [str(REPO / "bin" / "refctl"), "-H", f"unix://{self.socket}", *args]

    def daemon_args(self) -> list[str]:
        r = self.root
        return [
            "--config-file", f"{r}/daemon.json", "--data-root", f"{r}/data",
            "--exec-root", f"{r}/exec", "--host", f"unix://{self.socket}",
            "--pidfile", f"{r}/refd.pid", "--shutdown-timeout", "2",
        ]  # fmt: skip

    def enter(self) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.netns}", "--"]

    def pid(self) -> int | None:
        try:
            return int((self.root / "refd.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def setup(self, tarball: Path, tag: str) -> None:
        self.root.mkdir()
        (self.root / "daemon.json").write_text("{}")
        subprocess.run(["ip", "netns", "add", self.netns], check=True, capture_output=True)
        subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True)
        with open(self.root / "refd.log", "ab") as log:
            subprocess.run(
                ["setsid", "-f", *self.enter(), str(REPO / "bin" / "refd"), *self.daemon_args()],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, check=True, timeout=30,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while not self.answers():
            if time.monotonic() > deadline:
                log_text = (self.root / "refd.log").read_text(errors="replace")[-2000:]
                raise BenchError(f"refd did not answer on {self.socket}: {log_text}")
            time.sleep(0.1)
        super().setup(tarball, tag)

    def answers(self) -> bool:
        done = subprocess.run(self.cli("version"), capture_output=True, timeout=30, check=False)
        return done.returncode == 0

    def daemons(self) -> set[int]:
        pid = self.pid()
        return {pid} if pid else set()

    def teardown(self) -> None:
        pid = self.pid()
        if pid is not None and alive(pid):
            os.kill(pid, signal.SIGTERM)  # refd stops its containers on SIGTERM
            deadline = time.monotonic() + 30
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        netns = Path(f"/run/netns/{self.netns}")
        if (self.root / "data").is_dir():
            enter = self.enter() if netns.exists() else ["unshare", "-n"]
            subprocess.run([*enter, str(REPO / "bin" / "refd"), *self.daemon_args(), "--purge"],
                           capture_output=True, timeout=120, check=False)  # fmt: skip
        unmount_below(self.root)
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.root)], check=False)
        if netns.exists():
            subprocess.run(["ip", "netns", "delete", self.netns], check=False)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def unmount_below(root: Path) -> None:
    prefix = f"{root}/"
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefix):
            points.append(point)
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


# -- the measures --------------------------------------------------------------------------------
def interleaved(
    engines: list[Engine],
    rounds: int,
    warmup: int,
    rng: random.Random,
    once: Callable[[Engine], float],
) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {e.name: [] for e in engines}
    for i in range(warmup + rounds):
        order = engines[:]
        rng.shuffle(order)
        for engine in order:
            value = once(engine)
            if i >= warmup:
                samples[engine.name].append(value)
    return samples


def bridge_support(engine: Engine) -> str | None:
    """None if the engine's default network gives a container more than lo, else why not."""
    try:
        _, out = engine.call(
            "run", "--rm", *engine.run_flags(None), engine.image, "ls", "/sys/class/net", timeout=60
        )
    except (BenchError, subprocess.TimeoutExpired) as e:
        return f"the default network fails: {e}"
    links = sorted(set(out.split()) - {"lo"})
    return None if links else "its default network gives the container only lo (no bridge yet)"


def latency(
    engines: list[Engine], network: str | None, rounds: int, warmup: int, rng: random.Random
) -> dict[str, list[float]]:
    def once(engine: Engine) -> float:
        return engine.call("run", "--rm", *engine.run_flags(network), engine.image, "true")[0] * 1e3

    return interleaved(engines, rounds, warmup, rng, once)


class Memory:
    def __init__(self, k: int, containers: int, added: int, growth: int, detail: str) -> None:
        self.k, self.containers, self.added, self.growth, self.detail = (
            k,
            containers,
            added,
            growth,
            detail,
        )

    @property
    def total(self) -> int:
        return self.containers + self.added + self.growth


def container_pids(engine: Engine, ids: list[str]) -> set[int]:
    _, out = engine.call("inspect", "-f", "{{.State.Pid}}", *ids)
    pids = {int(x) for x in out.split() if x.isdigit() and int(x) > 0}
    if len(pids) != len(ids):
        raise BenchError(f"{engine.name}: {len(ids)} containers but init PIDs {sorted(pids)}")
    return pids


def memory(engine: Engine, k: int, settle: float) -> Memory:
    # Warm-up: the first `run -d` may load code paths `run --rm` did not.
    _, out = engine.call("run", "-d", *engine.run_flags(), engine.image, *SLEEP)
    engine.remove([out.split()[-1]])
    time.sleep(settle)
    daemons = engine.daemons()
    baseline_table = processes()
    baseline = {(p.pid, p.start) for p in baseline_table.values()}
    daemon_before = daemons_pss(daemons)
    ids = [
        engine.call("run", "-d", *engine.run_flags(), engine.image, *SLEEP)[1].split()[-1]
        for _ in range(k)
    ]
    try:
        inits = container_pids(engine, ids)
        time.sleep(settle)
        table = processes()
        in_containers = descendants(table, inits)
        from_daemons = descendants(table, daemons) - daemons
        added = {
            p.pid
            for p in table.values()
            if (p.pid, p.start) not in baseline
            and p.pid not in in_containers
            and (p.pid in from_daemons or any(cid in p.cmdline for cid in ids))
        }
        added = descendants(table, added) - in_containers
        kinds = sorted({table[p].comm for p in added})
        daemon_after = daemons_pss({pid for pid in daemons if pid in table})
        result = Memory(
            k,
            sum(pss_kib(p) for p in in_containers),
            sum(pss_kib(p) for p in added),
            daemon_after - daemon_before,
            f"{len(in_containers)} container processes, {len(added)} added "
            f"({', '.join(kinds) or 'none'}), daemons "
            f"{', '.join(sorted({baseline_table[p].comm for p in daemons})) or 'none'}",
        )
    finally:
        engine.remove(ids)
    return result


def burst(engine: Engine, n: int) -> tuple[float, float]:
    """Seconds until n parallel `run -d` all run; seconds of one `rm -f` of all of them."""
    argv = ["run", "-d", *engine.run_flags(), engine.image, *SLEEP]
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(lambda: engine.call(*argv)[1]) for _ in range(n)]
        errors = [f.exception() for f in futures]
    try:
        if any(errors):
            raise BenchError(
                f"{engine.name}: {sum(1 for e in errors if e)} of {n} failed: "
                f"{next(e for e in errors if e)}"
            )
        while len(engine.ours(running=True)) < n:
            time.sleep(0.02)
        elapsed = time.perf_counter() - t0
    finally:
        ids = engine.ours()
        t1 = time.perf_counter()
        engine.remove(ids)
        removal = time.perf_counter() - t1
    return elapsed, removal


# -- report ---------------------------------------------------------------------------------------
def ratio(value: float, base: float | None) -> str:
    return f"{value / base:6.2f}x" if base else "      -"


def report_timings(title: str, samples: dict[str, list[float]], unit: str = "ms") -> None:
    first = next(iter(samples.values()))
    print(f"\n{title}  ({len(first)} counted rounds, {unit}; ratio = median / docker's median)")
    print(f"  {'engine':<8} {'min':>9} {'median':>9} {'p90':>9} {'ratio':>8}")
    base = stats(samples["docker"])[1] if samples.get("docker") else None
    for name, values in samples.items():
        lo, med, p90 = stats(values)
        print(f"  {name:<8} {lo:9.1f} {med:9.1f} {p90:9.1f} {ratio(med, base):>8}")


def report_memory(results: dict[str, Memory]) -> None:
    k = next(iter(results.values())).k
    print(
        f"\n2. PSS per idle container ({k} `run -d ... sleep` each; MiB per container; "
        "ratio = total / docker's)"
    )
    print(
        f"  {'engine':<8} {'containers':>10} {'added':>8} {'daemons':>8} {'total':>8} {'ratio':>8}"
    )
    base = results["docker"].total if "docker" in results else None
    for name, m in results.items():
        print(
            f"  {name:<8} {m.containers / k / 1024:10.3f} {m.added / k / 1024:8.3f} "
            f"{m.growth / k / 1024:8.3f} {m.total / k / 1024:8.3f} "
            f"{ratio(m.total, base):>8}"
        )
    for name, m in results.items():
        print(f"  {name}: {m.detail}")
    print("  containers: PSS of each container's init (inspect .State.Pid) and its descendants;")
    print("  added: new processes naming a container id (containerd-shim -id, conmon -c) or")
    print("    descending from a daemon, outside the containers; daemons: PSS growth of the")
    print("    engine's daemons (dockerd+containerd; refd; none for podman) from a baseline")
    print("    after one warm-up container (negative growth is counted as it is).")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--rounds", type=int, default=20, help="counted latency rounds")
    p.add_argument("--warmup", type=int, default=2, help="latency rounds not counted")
    p.add_argument("--containers", type=int, default=10, help="idle containers for PSS")
    p.add_argument("--burst", type=int, default=50, help="parallel `run -d` calls")
    p.add_argument("--burst-rounds", type=int, default=3)
    p.add_argument("--settle", type=float, default=2.0, help="seconds before reading PSS")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--no-podman", action="store_true")
    p.add_argument(
        "--engines",
        default="docker,podman,refd",
        help="comma-separated subset of docker,podman,refd",
    )
    p.add_argument("--skip", default="", help="comma-separated subset of latency,memory,burst")
    opts = p.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("needs root (engines, /proc/PID/smaps_rollup of their processes)")
    wanted = [e for e in opts.engines.split(",") if e]
    if opts.no_podman or not shutil.which("podman"):
        wanted = [e for e in wanted if e != "podman"]
    skip = set(opts.skip.split(","))
    rng = random.Random(opts.seed)

    # SIGTERM cleans up as Ctrl-C does; a second signal during cleanup is ignored.
    def interrupted(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    art = ensure_artifacts(REPO / ".cache" / "image")
    workdir = Path(tempfile.mkdtemp(prefix="refd-bench-"))
    label = f"cts-bench={os.getpid()}"
    kinds: dict[str, type[Engine]] = {"docker": Docker, "podman": Podman, "refd": Refd}
    engines: list[Engine] = []
    try:
        for name in wanted:
            engine = kinds[name](workdir, label)
            engines.append(engine)
            engine.setup(art.tarball, art.digest[:12])
        print(
            f"image {art.tarball}; engines {', '.join(e.name for e in engines)}; "
            f"load average {os.getloadavg()}",
            flush=True,
        )

        if "latency" not in skip:
            samples = latency(engines, "none", opts.rounds, opts.warmup, rng)
            report_timings("1. run --rm --network none IMAGE true: start to exit", samples)
            refd = next((e for e in engines if e.name == "refd"), None)
            why = bridge_support(refd) if refd else "refd not measured"
            if why is None:
                samples = latency(engines, None, opts.rounds, opts.warmup, rng)
                report_timings("1b. run --rm IMAGE true (default network): start to exit", samples)
            else:
                print(f"\n1b. default network: skipped, refd: {why}")
            sys.stdout.flush()

        if "memory" not in skip:
            results: dict[str, Memory] = {}
            order = engines[:]
            rng.shuffle(order)
            for engine in order:
                results[engine.name] = memory(engine, opts.containers, opts.settle)
            report_memory({e.name: results[e.name] for e in engines})
            sys.stdout.flush()

        if "burst" not in skip:
            starts: dict[str, list[float]] = {e.name: [] for e in engines}
            removals: dict[str, list[float]] = {e.name: [] for e in engines}
            for _ in range(opts.burst_rounds):
                order = engines[:]
                rng.shuffle(order)
                for engine in order:
                    up, down = burst(engine, opts.burst)
                    starts[engine.name].append(up)
                    removals[engine.name].append(down)
            report_timings(f"3. {opts.burst} parallel `run -d` until all run", starts, "s")
            report_timings(f"3b. then `rm -f` of the {opts.burst}", removals, "s")
    except BenchError as e:
        print(f"\nbench stopped: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for engine in reversed(engines):
            try:
                engine.teardown()
            except Exception as e:
                print(f"{engine.name}: cleanup: {e}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)
        print(f"\nload average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
