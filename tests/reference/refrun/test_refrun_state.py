"""refrun's container records and lifecycle rules, driven through the CLI on fake records:
no root needed, no process is started (a record's "init" is this test process or a dead one)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from reference.cli.refrun import main
from reference.oci import fastjson, lifecycle, runlog, store
from reference.oci.default import default_spec

CID = "cts-refrun-unit"


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _own_start() -> int:
    st = store.proc_stat(os.getpid())
    assert st is not None
    return st[1]


def make_record(root: Path, cid: str = CID, **data: object) -> store.Record:
    directory = root / cid
    directory.mkdir(parents=True)
    rec = store.Record(
        str(directory),
        {"ociVersion": "1.2.0", "id": cid, "bundle": "/b", "rootfs": "/b/rootfs",
         "created": "2024-01-01T00:00:00Z", **data},
    )  # fmt: skip
    rec.save()
    return rec


def running(root: Path, cid: str = CID, **data: object) -> store.Record:
    return make_record(root, cid, pid=os.getpid(), start_time=_own_start(), **data)


def created(root: Path, cid: str = CID) -> store.Record:
    rec = running(root, cid)
    os.mkfifo(rec.path(store.FIFO))
    return rec


def stopped(root: Path, cid: str = CID, **data: object) -> store.Record:
    return make_record(root, cid, pid=_dead_pid(), start_time=1, **data)


def refrun(root: Path, *argv: str) -> int:
    return main(["--root", str(root), *argv])


# --- JSON and records ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [{"a": [1, 2.5, None, True, 'é"\n'], "b": {}, "c": []}, [], "x", 0, {"nested": {"k": [{}]}}],
)
def test_fastjson_matches_json(value: object) -> None:
    assert fastjson.dumps(value) == json.dumps(value, separators=(",", ":"))
    assert fastjson.dumps(value, indent=2) == json.dumps(value, indent=2)
    assert fastjson.loads(json.dumps(value)) == value


@pytest.mark.parametrize("text", ["", "{", "[1,]", "1 2", '{"a" 1}'])
def test_fastjson_errors(text: str) -> None:
    with pytest.raises(ValueError, match=r"offset|Expecting"):
        fastjson.loads(text)


def test_status_is_derived_from_the_host(tmp_path: Path) -> None:
    assert running(tmp_path, "a").status() == lifecycle.RUNNING
    assert created(tmp_path, "b").status() == lifecycle.CREATED
    assert stopped(tmp_path, "c").status() == lifecycle.STOPPED
    # A reused PID (another start time) is not our container.
    assert make_record(tmp_path, "d", pid=os.getpid(), start_time=1).status() == lifecycle.STOPPED
    creating = make_record(tmp_path, "e", pid=0, creator=os.getpid(), creator_start=_own_start())
    assert creating.status() == lifecycle.CREATING
    orphan = make_record(tmp_path, "f", pid=0, creator=_dead_pid(), creator_start=1)
    assert orphan.status() == lifecycle.STOPPED


def test_paused_reads_the_freezer(tmp_path: Path) -> None:
    freezer = tmp_path / "freezer"
    freezer.mkdir()
    (freezer / "freezer.state").write_text("FROZEN\n")
    (freezer / "freezer.self_freezing").write_text("1\n")
    rec = running(tmp_path / "root", cgroup={"driver": "v1", "dirs": {"freezer": str(freezer)}})
    assert rec.status() == lifecycle.PAUSED
    (freezer / "freezer.self_freezing").write_text("0\n")  # only an ancestor is frozen
    assert rec.status() == lifecycle.RUNNING


def test_save_is_atomic_and_round_trips(tmp_path: Path) -> None:
    rec = running(tmp_path)
    rec.data["annotations"] = {"k": "v"}
    rec.save()
    assert sorted(os.listdir(rec.dir)) == [store.STATE]  # no temporary file left
    loaded = store.load(runlog.Globals(root=str(tmp_path)), CID)
    assert loaded is not None
    assert loaded.data == rec.data


def test_corrupt_state_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = running(tmp_path)
    Path(rec.path(store.STATE)).write_text("{not json")
    assert refrun(tmp_path, "state", CID) == 1
    assert "corrupt state file" in capsys.readouterr().err
    assert refrun(tmp_path, "delete", "--force", CID) == 0  # still removable
    assert not Path(rec.dir).exists()


@pytest.mark.parametrize("cid", ["", ".", "..", "a/b", "a b", "x;y"])
def test_invalid_ids(tmp_path: Path, cid: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert refrun(tmp_path, "state", cid) == 1
    assert "invalid container id" in capsys.readouterr().err


# --- verbs ------------------------------------------------------------------------------
def test_state_prints_the_oci_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    running(tmp_path, annotations={"k": "v"})
    assert refrun(tmp_path, "state", CID) == 0
    state = json.loads(capsys.readouterr().out)
    assert state == {
        "ociVersion": "1.2.0", "id": CID, "pid": os.getpid(), "status": "running",
        "bundle": "/b", "rootfs": "/b/rootfs", "created": "2024-01-01T00:00:00Z", "owner": "",
        "annotations": {"k": "v"},
    }  # fmt: skip


def test_stopped_state_reports_pid_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stopped(tmp_path)
    assert refrun(tmp_path, "state", CID) == 0
    state = json.loads(capsys.readouterr().out)
    assert (state["status"], state["pid"]) == ("stopped", 0)


def test_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    running(tmp_path, "b-run")
    stopped(tmp_path, "a-stop")
    assert refrun(tmp_path, "list", "-q") == 0
    assert capsys.readouterr().out == "a-stop\nb-run\n"
    assert refrun(tmp_path, "list", "--format", "json") == 0
    assert [s["status"] for s in json.loads(capsys.readouterr().out)] == ["stopped", "running"]
    assert refrun(tmp_path, "list") == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert rows[1].split()[:3] == ["b-run", str(os.getpid()), "running"]


def test_list_of_a_missing_root_is_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert refrun(tmp_path / "nope", "list", "-q") == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("make", "argv", "message"),
    [
        (running, ["start", CID], f"cannot start a running container (needs created): {CID}"),
        (stopped, ["start", CID], f"cannot start a stopped container (needs created): {CID}"),
        (stopped, ["kill", CID, "KILL"], "cannot kill a stopped container"),
        (running, ["delete", CID], f"cannot delete a running container (needs stopped): {CID}"),
        (created, ["pause", CID], "cannot pause a created container (needs running)"),
        (running, ["resume", CID], "cannot resume a running container (needs paused)"),
        (stopped, ["exec", CID, "true"], "cannot exec a stopped container"),
        (stopped, ["update", "--memory=1m", CID], "cannot update a stopped container"),
    ],
)
def test_wrong_state_names_id_and_status(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: object,
    argv: list[str],
    message: str,
) -> None:
    assert callable(make)
    make(tmp_path)
    assert refrun(tmp_path, *argv) == 1
    assert message in capsys.readouterr().err
    assert (tmp_path / CID / store.STATE).exists()  # a refused verb changes nothing


@pytest.mark.parametrize("verb", ["state", "start", "kill", "delete", "pause", "resume", "ps"])
def test_missing_container(tmp_path: Path, capsys: pytest.CaptureFixture[str], verb: str) -> None:
    assert refrun(tmp_path, verb, CID) == 1
    assert f"container does not exist: {CID}" in capsys.readouterr().err


def test_delete_stopped_runs_poststop_and_removes(tmp_path: Path) -> None:
    out = tmp_path / "poststop.json"
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"cat > {out}"]}
    rec = stopped(tmp_path / "root", hooks={"poststop": [hook]})
    assert refrun(tmp_path / "root", "delete", CID) == 0
    assert not Path(rec.dir).exists()
    assert json.loads(out.read_text())["status"] == "stopped"


def test_failing_poststop_only_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = stopped(tmp_path, hooks={"poststop": [{"path": "/bin/false"}]})
    assert refrun(tmp_path, "delete", CID) == 0
    assert "hooks.poststop[0] exited with status 1" in capsys.readouterr().err
    assert not Path(rec.dir).exists()


# --- create's checks before anything is started -----------------------------------------------
def bundle(tmp_path: Path, **changes: object) -> Path:
    b = tmp_path / "bundle"
    (b / "rootfs").mkdir(parents=True, exist_ok=True)
    config = default_spec(["true"])
    config["process"]["terminal"] = False  # type: ignore[index]
    config.update(changes)
    (b / "config.json").write_text(json.dumps(config))
    return b


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(root={"path": "nope"}), "root.path"),
        (
            lambda c: c["linux"]["namespaces"].append({"type": "bogus"}),
            "unknown namespace type 'bogus'",
        ),
        (
            lambda c: c["linux"].update(
                namespaces=[{"type": "uts"}], maskedPaths=[], readonlyPaths=[]
            ),
            "needs a mount namespace",
        ),
        (lambda c: c["process"].update(args=[]), "process.args"),
        (lambda c: c["process"].update(terminal=True), "process.terminal"),
        (lambda c: c.update(ociVersion="2.0.0"), "ociVersion"),
    ],
)
def test_create_rejects_bad_configs_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: object, message: str
) -> None:
    b = bundle(tmp_path)
    config = json.loads((b / "config.json").read_text())
    assert callable(edit)
    edit(config)
    (b / "config.json").write_text(json.dumps(config))
    root = tmp_path / "root"
    assert refrun(root, "create", "--bundle", str(b), CID) == 1
    assert message in capsys.readouterr().err
    assert not (root / CID).exists()


def test_create_malformed_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = bundle(tmp_path)
    (b / "config.json").write_text('{"ociVersion": "1.0.0",\n  "root": }')
    assert refrun(tmp_path / "root", "create", "-b", str(b), CID) == 1
    assert f"malformed JSON: Expecting value: {b}/config.json:2:11" in capsys.readouterr().err


def test_create_duplicate_id_leaves_the_existing_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    b = bundle(tmp_path)
    rec = running(tmp_path / "root")
    assert refrun(tmp_path / "root", "create", "--bundle", str(b), CID) == 1
    assert f"container already exists (status running): {CID}" in capsys.readouterr().err
    assert Path(rec.path(store.STATE)).exists()


def test_spec_writes_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert refrun(tmp_path, "spec", "--bundle", str(tmp_path)) == 0
    config = json.loads((tmp_path / "config.json").read_text())
    assert config == json.loads(json.dumps(default_spec()))
    assert refrun(tmp_path, "spec", "--bundle", str(tmp_path)) == 1
    assert "config.json exists" in capsys.readouterr().err


def test_features(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert refrun(tmp_path, "features") == 0
    feats = json.loads(capsys.readouterr().out)
    assert feats["ociVersionMin"] == "1.0.0"
    assert "createRuntime" in feats["hooks"]
    assert "rbind" in feats["mountOptions"]
    assert feats["linux"]["cgroup"]["systemd"] is False
    assert "CAP_SYS_ADMIN" in feats["linux"]["capabilities"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_log_lines(fmt: str) -> None:
    line = runlog.format_line("error", 'bad "x"', fmt, ns=1_700_000_000_123_000_000)
    if fmt == "json":
        assert json.loads(line) == {
            "level": "error",
            "msg": 'bad "x"',
            "time": "2023-11-14T22:13:20Z",
        }
    else:
        assert line == 'time="2023-11-14T22:13:20Z" level=error msg="bad \\"x\\""'
    assert runlog.rfc3339(1_700_000_000_123_000_000, nanos=True) == "2023-11-14T22:13:20.123Z"
