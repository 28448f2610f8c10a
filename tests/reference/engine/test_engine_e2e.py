"""refd end to end, as root, through refctl and the API: the container lifecycle, bad input
(a clear error, no partial container, nothing leaked on the host), and the events stream."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reference.engine._refd import Refd, needs_root, running_refd

pytestmark = pytest.mark.skipif(needs_root(), reason="needs root")
SLEEP = ["/bin/probe", "sleep", "forever"]


@pytest.fixture(scope="module")
def refd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Refd]:
    with running_refd(tmp_path_factory.mktemp("e2e")) as daemon:
        yield daemon


def test_run_ps_inspect_logs_stop_rm(refd: Refd) -> None:
    done = refd.ctl(
        "run",
        "-d",
        "--name",
        "e2e-web",
        "--pull=never",
        refd.image,
        "sh",
        "-c",
        "echo ready; echo warn >&2; exec /bin/probe sleep forever",
    )
    assert done.returncode == 0, done.stderr
    cid = done.stdout.strip()
    assert len(cid) == 64
    listed = refd.ctl("ps", "--format", "{{.ID}} {{.Names}} {{.Status}}")
    assert f"{cid[:12]} e2e-web Up" in listed.stdout
    state = json.loads(refd.ctl("inspect", "-f", "{{json .State}}", "e2e-web").stdout)
    assert state["Running"] is True
    assert state["Pid"] > 0
    document = json.loads(refd.ctl("inspect", cid).stdout)[0]
    assert document["Config"]["Hostname"] == cid[:12]
    assert document["GraphDriver"]["Name"] == "overlay2"
    assert Path(document["GraphDriver"]["Data"]["UpperDir"]).is_dir()
    assert Path(document["HostnamePath"]).read_text() == f"{cid[:12]}\n"
    assert list(document["NetworkSettings"]["Networks"]) == ["bridge"]  # the default network
    for _ in range(50):
        logs = refd.ctl("logs", "e2e-web")
        if "warn" in logs.stderr:
            break
        time.sleep(0.1)
    assert (logs.stdout, logs.stderr) == ("ready\n", "warn\n")
    assert refd.ctl("stop", "-t", "5", "e2e-web").stdout == "e2e-web\n"
    state = json.loads(refd.ctl("inspect", "-f", "{{json .State}}", cid).stdout)
    assert (state["Status"], state["ExitCode"], state["Running"]) == ("exited", 0, False)
    assert refd.ctl("rm", "e2e-web").returncode == 0
    assert refd.leftovers(cid) == []
    assert refd.ctl("inspect", cid).returncode == 1


def test_foreground_run_exit_codes_and_output(refd: Refd) -> None:
    done = refd.ctl("run", "--rm", "--pull=never", refd.image, "sh", "-c", "echo out; exit 3")
    assert (done.returncode, done.stdout) == (3, "out\n")
    missing = refd.ctl("run", "--rm", "--pull=never", refd.image, "no-such-command")
    assert missing.returncode == 127, missing.stderr
    assert "executable file not found" in missing.stderr


def test_exec_pause_update_wait(refd: Refd) -> None:
    cid = refd.ctl("run", "-d", "--pull=never", "-m", "64m", refd.image, *SLEEP).stdout.strip()
    try:
        done = refd.ctl("exec", cid, "sh", "-c", "echo in; exit 5")
        assert (done.returncode, done.stdout) == (5, "in\n")
        assert refd.ctl("pause", cid).returncode == 0
        state = refd.ctl("inspect", "-f", "{{.State.Status}}", cid).stdout.strip()
        assert state == "paused"
        assert refd.ctl("exec", cid, "true").returncode != 0  # a paused container refuses exec
        assert refd.ctl("unpause", cid).returncode == 0
        assert refd.ctl("update", "--memory", "128m", "--memory-swap", "256m", cid).returncode == 0
        limits = json.loads(refd.ctl("inspect", "-f", "{{json .HostConfig}}", cid).stdout)
        assert (limits["Memory"], limits["MemorySwap"]) == (128 << 20, 256 << 20)
        assert refd.ctl("kill", "-s", "TERM", cid).returncode == 0
        assert refd.ctl("wait", cid).stdout.strip() == "0"  # the probe exits 0 on SIGTERM
    finally:
        refd.ctl("rm", "-f", cid)
    assert refd.leftovers(cid) == []


def test_stats_top_diff(refd: Refd) -> None:
    cid = refd.ctl("run", "-d", "--pull=never", "-m", "64m", refd.image, *SLEEP).stdout.strip()
    try:
        status, stats = refd.api("GET", f"/containers/{cid}/stats?stream=0")
        assert status == 200
        assert stats["memory_stats"]["limit"] == 64 << 20
        assert stats["pids_stats"]["current"] == 1
        table = refd.ctl("stats", "--no-stream", cid).stdout
        assert "/ 64MiB" in table
        assert "probe" in refd.ctl("top", cid).stdout
        refd.ctl("exec", cid, "sh", "-c", "echo x > /new; rm /etc/group")
        assert set(refd.ctl("diff", cid).stdout.split("\n")) >= {"A /new", "D /etc/group"}
    finally:
        refd.ctl("rm", "-f", cid)


# --- bad input: an error, nothing half-made ---------------------------------------------
def assert_nothing_made(refd: Refd, before: set[str], snapshots: set[str]) -> None:
    assert refd.container_ids() == before
    assert refd.snapshot_keys() == snapshots
    assert not {p.name for p in refd.cgroups()} - before
    containers = {p.name for p in (refd.data / "containers").iterdir()}
    assert containers == before


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["no-such-image:1"], 125, "No such image: no-such-image:1"),
        (
            ["-m", "12x", "IMAGE"],
            125,
            'invalid argument "12x" for "-m, --memory" flag: invalid size: \'12x\'',
        ),
        (["-m", "1m", "IMAGE"], 125, "Minimum memory limit allowed is 6MB"),
        (["-h", "h" * 65, "IMAGE"], 125, f'hostname "{"h" * 65}" is too long (maximum 64 bytes)'),
        (["--cpus", "64", "IMAGE"], 125, "Range of CPUs is from 0.01 to"),
        (["--cap-add", "FLY", "IMAGE"], 125, 'Unknown capability to add: "CAP_FLY"'),
        (
            ["--mount", "type=bind,source=/no/such/dir,target=/x", "IMAGE"],
            125,
            "bind source path does not exist: /no/such/dir",
        ),
        (["--network", "nonet", "IMAGE"], 125, "network nonet not found"),
        (["--ipc", "container:no-such-donor", "IMAGE"], 125, "No such container: no-such-donor"),
    ],
)
def test_bad_input_is_refused_and_leaves_nothing(
    refd: Refd, args: list[str], code: int, message: str
) -> None:
    before, snapshots = refd.container_ids(), refd.snapshot_keys()
    argv = [refd.image if a == "IMAGE" else a for a in args]
    done = refd.ctl("run", "-d", "--pull=never", *argv, *SLEEP)
    assert done.returncode == code, done.stderr
    assert message in done.stderr
    assert_nothing_made(refd, before, snapshots)


def test_name_conflict(refd: Refd) -> None:
    first = refd.ctl("create", "--name", "e2e-dup", "--pull=never", refd.image, *SLEEP)
    assert first.returncode == 0, first.stderr
    try:
        before, snapshots = refd.container_ids(), refd.snapshot_keys()
        again = refd.ctl("create", "--name", "e2e-dup", "--pull=never", refd.image, *SLEEP)
        assert again.returncode == 125
        assert 'Conflict. The container name "/e2e-dup" is already in use by container' in (
            again.stderr
        )
        assert_nothing_made(refd, before, snapshots)
    finally:
        refd.ctl("rm", "e2e-dup")


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b'{"Image": ', 400, "invalid JSON: Expecting value"),
        (b"[1, 2]", 400, "invalid JSON: the container config must be an object"),
        (b'{"Cmd": ["x"]}', 400, "Config.Image is required"),
        (
            b'{"Image": "IMAGE", "Cmd": "not a list", "HostConfig": {"Memory": "lots"}}',
            400,
            "expected an integer",
        ),
        (b'{"Image": "IMAGE", "HostConfig": []}', 400, "HostConfig must be an object"),
    ],
)
def test_malformed_requests(refd: Refd, body: bytes, status: int, message: str) -> None:
    before, snapshots = refd.container_ids(), refd.snapshot_keys()
    got, answer = refd.api(
        "POST", "/containers/create", body.replace(b"IMAGE", refd.image.encode())
    )
    assert got == status
    assert message in answer["message"]
    assert_nothing_made(refd, before, snapshots)


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "/containers/no-such/json", 404, "No such container: no-such"),
        ("GET", "/images/no-such:1/json", 404, "No such image: no-such:1"),
        ("POST", "/containers/no-such/start", 404, "No such container: no-such"),
        ("GET", "/v1.41/nothing/here", 404, "page not found"),
        ("DELETE", "/_ping", 405, "not allowed"),
    ],
)
def test_api_errors(refd: Refd, method: str, path: str, status: int, message: str) -> None:
    got, answer = refd.api(method, path)
    assert got == status
    assert message in answer["message"]


def test_running_container_cannot_be_removed_without_force(refd: Refd) -> None:
    cid = refd.ctl("run", "-d", "--pull=never", refd.image, *SLEEP).stdout.strip()
    try:
        status, answer = refd.api("DELETE", f"/containers/{cid}")
        assert status == 409
        assert answer["message"] == (
            f"You cannot remove a running container {cid}. Stop the container before "
            "attempting removal or force remove"
        )
        status, answer = refd.api("POST", f"/containers/{cid}/start")
        assert status == 304
    finally:
        refd.ctl("rm", "-f", cid)
    assert refd.leftovers(cid) == []


def test_events_stream(refd: Refd) -> None:
    since = time.time()
    cid = refd.ctl(
        "run",
        "-d",
        "--pull=never",
        "-m",
        "32m",
        "--memory-swap",
        "32m",
        refd.image,
        "/bin/probe",
        "alloc",
        "200",
    ).stdout.strip()
    assert refd.ctl("wait", cid).stdout.strip() == "137"
    assert refd.ctl("inspect", "-f", "{{.State.OOMKilled}}", cid).stdout.strip() == "true"
    refd.ctl("rm", cid)
    other = refd.ctl("run", "-d", "--pull=never", refd.image, *SLEEP).stdout.strip()
    refd.ctl("pause", other)
    refd.ctl("unpause", other)
    refd.ctl("rm", "-f", other)
    done = refd.ctl(
        "events",
        "--since",
        f"{since:.3f}",
        "--until",
        f"{time.time():.3f}",
        "--format",
        "{{.Actor.ID}} {{.Action}}",
    )
    seen = [line.split(" ", 1) for line in done.stdout.splitlines()]
    assert [a for i, a in seen if i == cid][:5] == ["create", "start", "oom", "die", "destroy"]
    assert [a for i, a in seen if i == other] == [
        "create",
        "start",
        "pause",
        "unpause",
        "kill",
        "die",
        "destroy",
    ]


def test_commit_save_load_round_trip(refd: Refd, tmp_path: Path) -> None:
    cid = refd.ctl("run", "-d", "--pull=never", refd.image, *SLEEP).stdout.strip()
    try:
        refd.ctl("exec", cid, "sh", "-c", "echo committed > /marker; echo x >> /etc/hosts")
        image_id = refd.ctl("commit", cid, "e2e-commit:t1").stdout.strip()
        assert image_id.startswith("sha256:")
    finally:
        refd.ctl("rm", "-f", cid)
    tarball = tmp_path / "saved.tar"
    assert refd.ctl("save", "-o", str(tarball), "e2e-commit:t1").returncode == 0
    assert refd.ctl("rmi", "e2e-commit:t1").returncode == 0
    loaded = refd.ctl("load", "-i", str(tarball))
    assert loaded.stdout.strip() == "Loaded image: e2e-commit:t1"
    done = refd.ctl("run", "--rm", "--pull=never", "e2e-commit:t1", "cat", "/marker", "/etc/hosts")
    assert done.stdout.startswith("committed\n127.0.0.1\tlocalhost\n")
    assert "\nx\n" not in done.stdout  # the /etc edit never reached the layer
    assert refd.ctl("rmi", "e2e-commit:t1").returncode == 0
