"""Where refrun keeps its containers: one directory per container under `--root`.

    <root>/<id>/state.json   what refrun knows (written atomically: tmp file + rename)
    <root>/<id>/config.json  the bundle's config as it was at create (exec and delete use it)
    <root>/<id>/exec.fifo    exists from create until start (runc's create/start handshake)

The status is not stored but derived each time, as runc does, because processes die without
telling anyone: no init PID yet -> creating (while the creating refrun lives); init gone, a
zombie, or its PID reused (start time differs) -> stopped; fifo still there -> created; cgroup
frozen -> paused; else running.

This module is on the path of every `state`/`kill`/`delete`, so it imports nothing heavy; the
cgroup package is imported only by `manager()`.
"""

from __future__ import annotations

import os

from reference.errors import ConfigError, NotFoundError
from reference.oci import fastjson, lifecycle

TYPE_CHECKING = False  # see reference/linux/syscall.py: avoids importing typing at run time
if TYPE_CHECKING:
    from reference.cgroups.manager import CgroupManager
    from reference.oci.runlog import Globals

STATE = "state.json"
CONFIG = "config.json"
FIFO = "exec.fifo"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def validate_id(cid: str) -> None:
    """runc's rule (^[\\w+-.]+$, not . or ..): the id becomes a directory and a cgroup name."""
    if not cid or cid in (".", "..") or not set(cid) <= _ID_CHARS:
        raise ConfigError("invalid container id (allowed: letters, digits, _ + - .)", obj=cid)


def container_dir(g: Globals, cid: str) -> str:
    validate_id(cid)
    return os.path.join(os.path.abspath(g.root), cid)


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of `pid`, or None if there is no such process.
    The start time tells a PID apart from a later process that reused it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses; everything after the last ")" is fixed.
    rest = text[text.rindex(b")") + 2 :].split()
    return rest[0].decode(), int(rest[19])


def alive(pid: int, start_time: int) -> bool:
    st = proc_stat(pid)
    return st is not None and st[1] == start_time and st[0] not in ("Z", "X")


class Record:
    """One container's state.json, plus the status derived from the host."""

    __slots__ = ("_manager", "data", "dir")

    def __init__(self, directory: str, data: dict[str, object]) -> None:
        self.dir = directory
        self.data = data
        self._manager: CgroupManager | None = None

    # -- fields ------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def pid(self) -> int:
        pid = self.data.get("pid", 0)
        return pid if isinstance(pid, int) else 0

    @property
    def bundle(self) -> str:
        return str(self.data.get("bundle", ""))

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def annotations(self) -> dict[str, str]:
        value = self.data.get("annotations")
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    def hooks(self, stage: str) -> list[dict[str, object]]:
        hooks = self.data.get("hooks")
        entries = hooks.get(stage) if isinstance(hooks, dict) else None
        return [h for h in entries if isinstance(h, dict)] if isinstance(entries, list) else []

    def cgroup(self) -> dict[str, object]:
        value = self.data.get("cgroup")
        return value if isinstance(value, dict) else {}

    # -- status ------------------------------------------------------------------------------
    def status(self) -> str:
        if self.pid == 0:
            creator, started = self.data.get("creator"), self.data.get("creator_start")
            if isinstance(creator, int) and isinstance(started, int) and alive(creator, started):
                return lifecycle.CREATING
            return lifecycle.STOPPED  # the creating refrun died half way: only delete helps
        started = self.data.get("start_time")
        if not isinstance(started, int) or not alive(self.pid, started):
            return lifecycle.STOPPED
        if os.path.exists(self.path(FIFO)):
            return lifecycle.CREATED
        if self.frozen():
            return lifecycle.PAUSED
        return lifecycle.RUNNING

    def frozen(self) -> bool:
        """Read the freezer directly: building a cgroup manager costs more than `state` itself."""
        cg = self.cgroup()
        if cg.get("driver") == "v2":
            return _read(os.path.join(str(cg.get("dir")), "cgroup.freeze")) == "1"
        dirs = cg.get("dirs")
        freezer = dirs.get("freezer") if isinstance(dirs, dict) else None
        if (
            not isinstance(freezer, str)
            or _read(os.path.join(freezer, "freezer.state")) != "FROZEN"
        ):
            return False
        # FROZEN is also reported when only an ancestor is frozen; that is not our pause.
        return _read(os.path.join(freezer, "freezer.self_freezing")) != "0"

    def oci_state(self, status: str | None = None) -> dict[str, object]:
        """The state object runtime.md defines, in runc's key order with runc's extras."""
        status = status or self.status()
        out: dict[str, object] = {
            "ociVersion": self.data.get("ociVersion", ""),
            "id": self.id,
            # runc reports 0 once the container has stopped: the PID may belong to another.
            "pid": 0 if status == lifecycle.STOPPED else self.pid,
            "status": status,
            "bundle": self.bundle,
            "rootfs": self.data.get("rootfs", ""),
            "created": self.data.get("created", ""),
            "owner": "",
        }
        if self.annotations():
            out["annotations"] = self.annotations()
        return out

    # -- persistence -------------------------------------------------------------------------
    def save(self) -> None:
        """Write state.json atomically, so a concurrent reader sees the old or the new one."""
        tmp = self.path(f".{STATE}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, fastjson.dumps(self.data).encode())
        finally:
            os.close(fd)
        os.replace(tmp, self.path(STATE))

    def remove(self) -> None:
        """Remove the container directory (it holds only flat files)."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return
        for name in names:
            unlink_quiet(os.path.join(self.dir, name))
        try:
            os.rmdir(self.dir)
        except FileNotFoundError:
            return

    def manager(self) -> CgroupManager:
        """The container's cgroup, from the directories resolved at create (a relative
        cgroupsPath must not be re-resolved against the cgroup of whoever runs refrun now).
        Built once per record: kill and destroy, one after the other in `run` and `delete`,
        share it (the description does not change once create has saved it)."""
        if self._manager is None:
            from reference.cgroups.factory import from_description

            self._manager = from_description(self.cgroup())
        return self._manager


def unlink_quiet(path: str) -> None:
    """unlink, where "already gone" is success (contextlib.suppress costs ms to import)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def load(g: Globals, cid: str) -> Record | None:
    """The container `cid`, or None if there is none. A damaged state.json is a ConfigError."""
    directory = container_dir(g, cid)
    try:
        with open(os.path.join(directory, STATE), encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        if os.path.isdir(directory):  # `create` between mkdir and its first save
            return Record(directory, {"id": cid, "pid": 0})
        return None
    try:
        data = fastjson.loads(text)
    except ValueError as e:
        raise ConfigError(f"corrupt state file ({e})", obj=os.path.join(directory, STATE)) from e
    if not isinstance(data, dict) or data.get("id") != cid:
        raise ConfigError("corrupt state file", obj=os.path.join(directory, STATE))
    return Record(directory, data)


def require(g: Globals, cid: str) -> Record:
    rec = load(g, cid)
    if rec is None:
        raise NotFoundError("container does not exist", obj=cid)
    return rec


def list_ids(g: Globals) -> list[str]:
    try:
        names = os.listdir(g.root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if os.path.isdir(os.path.join(g.root, n)))
