"""Container verbs: run, create, start, ps, logs, exec, stop, restart, kill, rm, pause,
unpause, update, wait, top, diff, commit (inspect and stats are in inspect.py)."""

from __future__ import annotations

import sys
import time

from reference.cli.ctl import netopts, output, runopts
from reference.cli.ctl.client import ApiError
from reference.cli.ctl.common import Ctx, copy_frames, daemon_error, each, err, split_ref
from reference.cli.ctl.flags import UsageError, flag, parse, parse_filters
from reference.engine.units import memory_flag
from reference.errors import ConfigError
from reference.oci import fastjson

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; typing costs ms to import
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any


def _exit_code_for(message: str) -> int:
    """docker run's exit status when the container could not start (CLI run.go)."""
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message:
        return 126
    return 125


def _pull(ctx: Ctx, image: str) -> None:
    name, tag = split_ref(image)
    err(f"Unable to find image '{image}' locally")
    response = ctx.client.request(
        "POST", "/images/create", {"fromImage": name, "tag": tag or "latest"}
    )
    for message in response.lines():
        if "error" in message:
            raise ApiError(500, message["error"])
        if message.get("status", "").startswith(("Digest:", "Status:")):
            err(message["status"])


def create_container(ctx: Ctx, argv: Sequence[str]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    values, rest = parse(ctx.verb, argv, runopts.RUN_FLAGS, interspersed=False)
    if not rest:
        raise UsageError(ctx.verb, f'"refctl {ctx.verb}" requires at least 1 argument.')
    image, command = rest[0], rest[1:]
    body = runopts.build(ctx.verb, values, image, command)
    query = {"name": values["name"]} if values["name"] else None
    if values["pull"] not in ("missing", "always", "never"):
        raise UsageError(
            ctx.verb,
            f"invalid pull option: '{values['pull']}': must be one of "
            '"always", "missing" or "never"',
        )
    try:
        if values["pull"] == "always":
            _pull(ctx, image)
        created = ctx.client.post("/containers/create", query, body)
    except ApiError as e:
        if e.status != 404 or "No such image" not in str(e) or values["pull"] != "missing":
            if e.status == 404 and "No such image" in str(e):
                err(f"Unable to find image '{image}' locally")
            raise
        _pull(ctx, image)
        created = ctx.client.post("/containers/create", query, body)
    for warning in created.get("Warnings") or []:
        err(f"WARNING: {warning}")
    return created["Id"], values, body


def run(ctx: Ctx, argv: Sequence[str]) -> int:
    try:
        cid, values, body = create_container(ctx, argv)
    except ApiError as e:
        err(daemon_error(e, "refctl: "))
        return 125
    client = ctx.client
    if values["detach"]:
        try:
            client.request("POST", f"/containers/{cid}/start")
        except ApiError as e:
            err(daemon_error(e, "refctl: "))
            return _exit_code_for(str(e))
        sys.stdout.write(cid + "\n")
        return 0
    auto_remove = body["HostConfig"]["AutoRemove"]
    try:
        attach = client.hijack(f"/containers/{cid}/attach", {"stream": 1, "stdout": 1, "stderr": 1})
        condition = "removed" if auto_remove else "next-exit"
        waiter = client.request("POST", f"/containers/{cid}/wait", {"condition": condition})
        client.request("POST", f"/containers/{cid}/start")
    except ApiError as e:
        err(daemon_error(e, "refctl: "))
        return _exit_code_for(str(e))
    copy_frames(attach)
    result = waiter.json() or {}
    return int(result.get("StatusCode", 125))


def create(ctx: Ctx, argv: Sequence[str]) -> int:
    try:
        cid, _, _ = create_container(ctx, argv)
    except ApiError as e:
        err(daemon_error(e, "refctl: "))
        return 125
    sys.stdout.write(cid + "\n")
    return 0


def start(ctx: Ctx, argv: Sequence[str]) -> int:
    _values, names = parse(ctx.verb, argv, [flag("--attach,-a", "bool", False)])
    return each(names, lambda n: ctx.client.request("POST", f"/containers/{n}/start"))


PS_HEADERS = {
    "ID": "CONTAINER ID",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED",
    "Status": "STATUS",
    "Ports": "PORTS",
    "Names": "NAMES",
    "State": "STATE",
    "Labels": "LABELS",
    "Mounts": "MOUNTS",
    "Networks": "NETWORKS",
}


def _ps_row(item: dict[str, Any], trunc: bool) -> dict[str, Any]:
    command = item.get("Command", "")
    created = float(item.get("Created", 0))
    return {
        "ID": item["Id"][:12] if trunc else item["Id"],
        "Image": item.get("Image", ""),
        "Command": '"' + output.truncate(command, 20, trunc) + '"',
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(created)),
        "RunningFor": output.ago(created),
        "Status": item.get("Status", ""),
        "Ports": netopts.displayable_ports(item.get("Ports") or []),
        "Names": ",".join(n.lstrip("/") for n in item.get("Names", [])),
        "State": item.get("State", ""),
        "Labels": ",".join(f"{k}={v}" for k, v in (item.get("Labels") or {}).items()),
        "Mounts": "",
        "Networks": ",".join((item.get("NetworkSettings") or {}).get("Networks") or {}),
    }


def ps(ctx: Ctx, argv: Sequence[str]) -> int:
    spec = [
        flag("--all,-a", "bool", False),
        flag("--quiet,-q", "bool", False),
        flag("--filter,-f", "list"),
        flag("--format"),
        flag("--no-trunc", "bool", False),
        flag("--last,-n"),
        flag("--latest,-l", "bool", False),
        flag("--size,-s", "bool", False),
    ]
    values, _ = parse(ctx.verb, argv, spec)
    filters = parse_filters(ctx.verb, values["filter"])
    limit = 1 if values["latest"] else int(values["last"] or -1)
    query = {
        "all": values["all"] or limit > 0,
        "limit": limit if limit > 0 else None,
        "filters": fastjson.dumps(filters) if filters else None,
    }
    items = ctx.client.get("/containers/json", query)
    rows = [_ps_row(i, not values["no_trunc"]) for i in items]
    if values["quiet"]:
        output.emit("".join(f"{r['ID']}\n" for r in rows))
    else:
        cols = ["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"]
        output.emit(output.listing(values["format"], rows, PS_HEADERS, cols))
    return 0


def logs(ctx: Ctx, argv: Sequence[str]) -> int:
    spec = [
        flag("--follow,-f", "bool", False),
        flag("--tail,-n", default="all"),
        flag("--timestamps,-t", "bool", False),
        flag("--since"),
        flag("--until"),
        flag("--details", "bool", False),
    ]
    values, names = parse(ctx.verb, argv, spec)
    if len(names) != 1:
        raise UsageError(ctx.verb, '"refctl logs" requires exactly 1 argument.')
    query = {
        "stdout": 1,
        "stderr": 1,
        "follow": values["follow"],
        "tail": values["tail"],
        "timestamps": values["timestamps"],
        "since": values["since"],
        "until": values["until"],
    }
    copy_frames(ctx.client.request("GET", f"/containers/{names[0]}/logs", query))
    return 0


def exec_(ctx: Ctx, argv: Sequence[str]) -> int:
    spec = [
        flag("--detach,-d", "bool", False),
        flag("--env,-e", "list"),
        flag("--user,-u"),
        flag("--workdir,-w"),
        flag("--privileged", "bool", False),
        flag("--interactive,-i", "bool", False),
        flag("--tty,-t", "bool", False),
        flag("--detach-keys"),
    ]
    values, rest = parse(ctx.verb, argv, spec, interspersed=False)
    if len(rest) < 2:
        raise UsageError(ctx.verb, '"refctl exec" requires at least 2 arguments.')
    if values["tty"]:
        raise UsageError(ctx.verb, "a terminal (-t) is not supported by refd yet")
    name, command = rest[0], rest[1:]
    body = {
        "AttachStdin": False,
        "AttachStdout": True,
        "AttachStderr": True,
        "Tty": False,
        "Env": values["env"],
        "Cmd": command,
        "Privileged": values["privileged"],
        "User": values["user"] or "",
        "WorkingDir": values["workdir"] or "",
    }
    try:
        exec_id = ctx.client.request("POST", f"/containers/{name}/exec", body=body).json()["Id"]
        if values["detach"]:
            ctx.client.request(
                "POST", f"/exec/{exec_id}/start", body={"Detach": True, "Tty": False}
            )
            return 0
        copy_frames(
            ctx.client.hijack(f"/exec/{exec_id}/start", None, {"Detach": False, "Tty": False})
        )
        result = ctx.client.get(f"/exec/{exec_id}/json")
    except ApiError as e:
        err(daemon_error(e))
        return 126 if "not running" not in str(e) and e.status >= 500 else 1
    return int(result.get("ExitCode") or 0)


def stop(ctx: Ctx, argv: Sequence[str]) -> int:
    values, names = parse(ctx.verb, argv, [flag("--time,-t"), flag("--signal,-s")])
    query = {"t": values["time"]} if values["time"] is not None else None
    path = "restart" if ctx.verb == "restart" else "stop"
    return each(names, lambda n: ctx.client.request("POST", f"/containers/{n}/{path}", query))


def kill(ctx: Ctx, argv: Sequence[str]) -> int:
    values, names = parse(ctx.verb, argv, [flag("--signal,-s", default="KILL")])
    query = {"signal": values["signal"]}
    return each(names, lambda n: ctx.client.request("POST", f"/containers/{n}/kill", query))


def rm(ctx: Ctx, argv: Sequence[str]) -> int:
    spec = [
        flag("--force,-f", "bool", False),
        flag("--volumes,-v", "bool", False),
        flag("--link,-l", "bool", False),
    ]
    values, names = parse(ctx.verb, argv, spec)
    query = {"force": values["force"], "v": values["volumes"]}
    return each(names, lambda n: ctx.client.request("DELETE", f"/containers/{n}", query))


def pause(ctx: Ctx, argv: Sequence[str]) -> int:
    _, names = parse(ctx.verb, argv, [])
    return each(names, lambda n: ctx.client.request("POST", f"/containers/{n}/{ctx.verb}"))


def update(ctx: Ctx, argv: Sequence[str]) -> int:
    spec = [
        flag("--memory,-m"),
        flag("--memory-swap"),
        flag("--memory-reservation"),
        flag("--cpus"),
        flag("--cpu-shares,-c"),
        flag("--cpu-period"),
        flag("--cpu-quota"),
        flag("--cpuset-cpus"),
        flag("--cpuset-mems"),
        flag("--pids-limit"),
        flag("--blkio-weight"),
        flag("--restart"),
    ]
    values, names = parse(ctx.verb, argv, spec)
    body: dict[str, Any] = {}
    try:
        for key, api, swap in (
            ("memory", "Memory", False),
            ("memory_swap", "MemorySwap", True),
            ("memory_reservation", "MemoryReservation", False),
        ):
            if values[key] is not None:
                body[api] = memory_flag(values[key], allow_unlimited=swap)
    except ConfigError as e:
        raise UsageError(ctx.verb, f"invalid argument: {e}") from None
    for key, api in (
        ("cpu_shares", "CpuShares"),
        ("cpu_period", "CpuPeriod"),
        ("cpu_quota", "CpuQuota"),
        ("pids_limit", "PidsLimit"),
        ("blkio_weight", "BlkioWeight"),
    ):
        if values[key] is not None:
            body[api] = int(values[key])
    for key, api in (("cpuset_cpus", "CpusetCpus"), ("cpuset_mems", "CpusetMems")):
        if values[key] is not None:
            body[api] = values[key]
    if values["cpus"] is not None:
        body["NanoCpus"] = round(float(values["cpus"]) * 1e9)
    return each(names, lambda n: ctx.client.post(f"/containers/{n}/update", body=body))


def wait(ctx: Ctx, argv: Sequence[str]) -> int:
    _, names = parse(ctx.verb, argv, [])
    failed = False
    for name in names:
        try:
            result = ctx.client.request("POST", f"/containers/{name}/wait").json()
            sys.stdout.write(f"{result['StatusCode']}\n")
            sys.stdout.flush()
        except ApiError as e:
            err(daemon_error(e))
            failed = True
    return 1 if failed else 0


def top(ctx: Ctx, argv: Sequence[str]) -> int:
    _, rest = parse(ctx.verb, argv, [], interspersed=False)
    if not rest:
        raise UsageError(ctx.verb, '"refctl top" requires at least 1 argument.')
    query = {"ps_args": " ".join(rest[1:])} if rest[1:] else None
    result = ctx.client.get(f"/containers/{rest[0]}/top", query)
    output.emit(output.table(result["Titles"], result["Processes"]))
    return 0


def diff(ctx: Ctx, argv: Sequence[str]) -> int:
    _, names = parse(ctx.verb, argv, [])
    if len(names) != 1:
        raise UsageError(ctx.verb, '"refctl diff" requires exactly 1 argument.')
    kinds = {0: "C", 1: "A", 2: "D"}
    changes = ctx.client.get(f"/containers/{names[0]}/changes") or []
    output.emit("".join(f"{kinds[c['Kind']]} {c['Path']}\n" for c in changes))
    return 0


def commit(ctx: Ctx, argv: Sequence[str]) -> int:
    spec = [
        flag("--author,-a"),
        flag("--change,-c", "list"),
        flag("--message,-m"),
        flag("--pause,-p", "bool", True),
    ]
    values, rest = parse(ctx.verb, argv, spec)
    if not 1 <= len(rest) <= 2:
        raise UsageError(ctx.verb, '"refctl commit" requires at least 1 and at most 2 arguments.')
    repo, tag = split_ref(rest[1]) if len(rest) == 2 else ("", "")
    query = {
        "container": rest[0],
        "repo": repo or None,
        "tag": tag or None,
        "comment": values["message"],
        "author": values["author"],
        "pause": values["pause"],
        "changes": values["change"],
    }
    result = ctx.client.request("POST", "/commit", query, body={}).json()
    sys.stdout.write(result["Id"] + "\n")
    return 0
