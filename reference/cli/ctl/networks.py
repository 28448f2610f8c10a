"""`network` verbs (create, ls, inspect, rm, connect, disconnect, prune) and `port`, with
the docker CLI's flags, request bodies, output and errors:

    refctl network create [-d DRIVER] [--subnet CIDR] [--gateway IP] [--ip-range CIDR]
                          [--aux-address NAME=IP] [-o K=V] [--label K=V] [--internal]
                          [--attachable] [--ipv6] NAME        → prints the network id
    refctl network ls [-q] [-f K=V] [--format T] [--no-trunc]
    refctl network inspect [-f T] [-v] NAME...                 → a JSON array
    refctl network rm|remove NAME...
    refctl network connect [--ip IP] [--alias A] NET CONTAINER
    refctl network disconnect [-f] NET CONTAINER
    refctl network prune [-f] [--filter K=V]
    refctl port CONTAINER [PRIVATE_PORT[/PROTO]]

What refd does not do (IPv6, swarm networks) is sent anyway: the daemon says why it refuses,
so that refctl and the docker CLI get the same answer.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from typing import Any

from reference.cli.ctl import netopts, output
from reference.cli.ctl.client import ApiError
from reference.cli.ctl.common import Ctx, daemon_error, err
from reference.cli.ctl.flags import UsageError, flag, parse, parse_filters
from reference.cli.ctl.inspect import emit_documents

USAGE = """Usage:  refctl network COMMAND

Manage networks

Commands:
  connect     Connect a container to a network
  create      Create a network
  disconnect  Disconnect a container from a network
  inspect     Display detailed information on one or more networks
  ls          List networks
  prune       Remove all unused networks
  rm          Remove one or more networks
"""
PRUNE_WARNING = (
    "WARNING! This will remove all custom networks not used by at least one container.\n"
    "Are you sure you want to continue? [y/N] "
)
LS_HEADERS = {
    "ID": "NETWORK ID",
    "Name": "NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "IPv6": "IPV6",
    "Internal": "INTERNAL",
    "Labels": "LABELS",
    "CreatedAt": "CREATED AT",
}


def network(ctx: Ctx, argv: Sequence[str]) -> int:
    """`refctl network SUBCOMMAND ...`: the verb name becomes "network SUBCOMMAND"."""
    if not argv or argv[0] in ("--help", "-h", "help"):
        sys.stdout.write(USAGE)
        return 0
    sub, rest = argv[0], list(argv[1:])
    verbs = {
        "create": create,
        "ls": ls,
        "list": ls,
        "inspect": inspect,
        "rm": rm,
        "remove": rm,
        "connect": connect,
        "disconnect": disconnect,
        "prune": prune,
    }
    if sub not in verbs:
        err(f"refctl: 'network {sub}' is not a refctl command.\nSee 'refctl network --help'")
        return 1
    ctx.verb = f"network {sub}"
    if rest[:1] == ["--help"]:
        sys.stdout.write(f"Usage:  refctl network {sub} [OPTIONS] ...\n")
        return 0
    return verbs[sub](ctx, rest)


def _args(ctx: Ctx, names: list[str], count: int, exact: bool = True) -> None:
    if exact and len(names) != count:
        noun = "argument" if count == 1 else "arguments"
        raise UsageError(ctx.verb, f'"refctl {ctx.verb}" requires exactly {count} {noun}.')
    if not exact and len(names) < count:
        raise UsageError(ctx.verb, f'"refctl {ctx.verb}" requires at least {count} argument.')


def _pairs(items: Sequence[str]) -> dict[str, str]:
    """docker's MapOpts and label lists: "k=v" → {k: v}, "k" → {k: ""}."""
    return dict(item.partition("=")[::2] for item in items)


def _split(items: Sequence[str]) -> list[str]:
    """pflag's slice flags take comma-separated values too."""
    return [part for item in items for part in item.split(",") if part]


# -- create ------------------------------------------------------------------------------
def create(ctx: Ctx, argv: Sequence[str]) -> int:
    spec = [
        flag("--driver,-d", default="bridge"),
        flag("--subnet", "list"),
        flag("--gateway", "list"),
        flag("--ip-range", "list"),
        flag("--aux-address", "list"),
        flag("--opt,-o", "list"),
        flag("--label", "list"),
        flag("--internal", "bool", False),
        flag("--attachable", "bool", False),
        flag("--ingress", "bool", False),
        flag("--ipv6", "bool", False),
        flag("--ipam-driver", default="default"),
        flag("--ipam-opt", "list"),
        flag("--scope", default=""),
        flag("--config-only", "bool", False),
        flag("--config-from", default=""),
    ]
    values, names = parse(ctx.verb, argv, spec)
    _args(ctx, names, 1)
    body = create_body(ctx.verb, names[0], values)
    created = ctx.client.post("/networks/create", body=body)
    if created.get("Warning"):
        err(f"WARNING: {created['Warning']}")
    sys.stdout.write(created["Id"] + "\n")
    return 0


def create_body(verb: str, name: str, values: dict[str, Any]) -> dict[str, Any]:
    """The POST /networks/create body the docker CLI sends for these flags."""
    configs = netopts.ipam_config(
        verb,
        _split(values["subnet"]),
        _split(values["ip_range"]),
        _split(values["gateway"]),
        _pairs(values["aux_address"]),
    )
    return {
        "Name": name,
        "CheckDuplicate": True,
        "Driver": values["driver"],
        "Scope": values["scope"],
        "EnableIPv6": values["ipv6"],
        "IPAM": {
            "Driver": values["ipam_driver"],
            "Options": _pairs(values["ipam_opt"]),
            "Config": configs,
        },
        "Internal": values["internal"],
        "Attachable": values["attachable"],
        "Ingress": values["ingress"],
        "ConfigOnly": values["config_only"],
        "ConfigFrom": {"Network": values["config_from"]} if values["config_from"] else None,
        "Options": _pairs(values["opt"]),
        "Labels": _pairs(values["label"]),
    }


# -- ls, inspect -------------------------------------------------------------------------
def _created_at(stamp: str) -> str:
    """RFC 3339 → Go's time.String(): "2026-11-28 02:42:02.452634401 +0000 UTC"."""
    m = re.match(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", stamp)
    if m is None:
        return stamp
    fraction = (m[3] or "").rstrip("0").rstrip(".")
    zone = "+0000 UTC" if m[4] in (None, "Z") else f"{m[4].replace(':', '')} {m[4]}"
    return f"{m[1]} {m[2]}{fraction} {zone}"


def _ls_row(item: dict[str, Any], trunc: bool) -> dict[str, str]:
    labels = item.get("Labels") or {}
    return {
        "ID": item["Id"][:12] if trunc else item["Id"],
        "Name": item["Name"],
        "Driver": item.get("Driver", ""),
        "Scope": item.get("Scope", ""),
        "IPv6": "true" if item.get("EnableIPv6") else "false",
        "Internal": "true" if item.get("Internal") else "false",
        "Labels": ",".join(f"{k}={v}" for k, v in labels.items()),
        "CreatedAt": _created_at(item.get("Created", "")),
    }


def ls(ctx: Ctx, argv: Sequence[str]) -> int:
    spec = [
        flag("--quiet,-q", "bool", False),
        flag("--filter,-f", "list"),
        flag("--format"),
        flag("--no-trunc", "bool", False),
    ]
    values, names = parse(ctx.verb, argv, spec)
    if names:
        raise UsageError(ctx.verb, f'"refctl {ctx.verb}" accepts no arguments.')
    filters = parse_filters(ctx.verb, values["filter"])
    query = {"filters": json.dumps(filters)} if filters else None
    items = ctx.client.get("/networks", query) or []
    items = sorted(items, key=lambda i: netopts.natural_key(i["Name"]))
    rows = [_ls_row(i, not values["no_trunc"]) for i in items]
    if values["quiet"]:
        output.emit("".join(f"{r['ID']}\n" for r in rows))
    else:
        cols = ["ID", "Name", "Driver", "Scope"]
        output.emit(output.listing(values["format"], rows, LS_HEADERS, cols))
    return 0


def inspect(ctx: Ctx, argv: Sequence[str]) -> int:
    values, names = parse(
        ctx.verb, argv, [flag("--format,-f"), flag("--verbose,-v", "bool", False)]
    )
    _args(ctx, names, 1, exact=False)
    found, missing = [], []
    query = {"verbose": True} if values["verbose"] else None
    for name in names:
        try:
            found.append(ctx.client.get(f"/networks/{name}", query))
        except ApiError as e:
            if e.status != 404:
                raise
            missing.append(daemon_error(e))
    if emit_documents(found, values["format"]):
        return 1
    for message in missing:  # after the documents, as docker prints them
        err(message)
    return 1 if missing else 0


# -- rm, connect, disconnect, prune -------------------------------------------------------
def rm(ctx: Ctx, argv: Sequence[str]) -> int:
    values, names = parse(ctx.verb, argv, [flag("--force,-f", "bool", False)])
    _args(ctx, names, 1, exact=False)
    failed = False
    for name in names:
        try:
            ctx.client.request("DELETE", f"/networks/{name}")
        except ApiError as e:
            if not (values["force"] and e.status == 404):  # -f: a missing one is no error
                err(daemon_error(e))
                failed = True
            continue
        output.emit(f"{name}\n")
    return 1 if failed else 0


def connect(ctx: Ctx, argv: Sequence[str]) -> int:
    spec = [
        flag("--ip"),
        flag("--ip6"),
        flag("--alias", "list"),
        flag("--link", "list"),
        flag("--link-local-ip", "list"),
        flag("--driver-opt", "list"),
    ]
    values, names = parse(ctx.verb, argv, spec)
    _args(ctx, names, 2)
    ctx.client.request("POST", f"/networks/{names[0]}/connect", body=connect_body(names, values))
    return 0


def connect_body(names: Sequence[str], values: dict[str, Any]) -> dict[str, Any]:
    ipam: dict[str, Any] = {}
    if values["ip"]:
        ipam["IPv4Address"] = values["ip"]
    if values["ip6"]:
        ipam["IPv6Address"] = values["ip6"]
    if values["link_local_ip"]:
        ipam["LinkLocalIPs"] = _split(values["link_local_ip"])
    return {
        "Container": names[1],
        "EndpointConfig": {
            "IPAMConfig": ipam,
            "Links": values["link"] or None,
            "Aliases": values["alias"],
            "DriverOpts": _pairs(values["driver_opt"]),
        },
    }


def disconnect(ctx: Ctx, argv: Sequence[str]) -> int:
    values, names = parse(ctx.verb, argv, [flag("--force,-f", "bool", False)])
    _args(ctx, names, 2)
    body = {"Container": names[1], "Force": values["force"]}
    ctx.client.request("POST", f"/networks/{names[0]}/disconnect", body=body)
    return 0


def prune(ctx: Ctx, argv: Sequence[str]) -> int:
    values, names = parse(
        ctx.verb, argv, [flag("--force,-f", "bool", False), flag("--filter", "list")]
    )
    if names:
        raise UsageError(ctx.verb, f'"refctl {ctx.verb}" accepts no arguments.')
    filters = parse_filters(ctx.verb, values["filter"])
    if not values["force"]:
        sys.stdout.write(PRUNE_WARNING)
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    query = {"filters": json.dumps(filters)} if filters else None
    report = ctx.client.post("/networks/prune", query) or {}
    deleted = report.get("NetworksDeleted") or []
    if deleted:
        # docker prints the report and then an empty line
        output.emit("Deleted Networks:\n" + "".join(f"{n}\n" for n in deleted) + "\n")
    return 0


# -- port --------------------------------------------------------------------------------
def port(ctx: Ctx, argv: Sequence[str]) -> int:
    _, names = parse(ctx.verb, argv, [])
    if not 1 <= len(names) <= 2:
        raise UsageError(
            ctx.verb, f'"refctl {ctx.verb}" requires at least 1 and at most 2 arguments.'
        )
    document = ctx.client.get(f"/containers/{names[0]}/json")
    ports = (document.get("NetworkSettings") or {}).get("Ports")
    try:
        lines = netopts.port_lines(ports, names[0], names[1] if len(names) > 1 else None)
    except ValueError as e:
        err(str(e))
        return 1
    output.emit("".join(f"{line}\n" for line in lines))
    return 0
