"""Image verbs: images, load, save, import, pull, push, tag, rmi."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from reference.cli.ctl import output
from reference.cli.ctl.client import ApiError
from reference.cli.ctl.common import Ctx, daemon_error, err, split_ref
from reference.cli.ctl.flags import UsageError, flag, parse, parse_filters
from reference.engine.units import human_size

IMAGE_HEADERS = {
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "ID": "IMAGE ID",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
    "Digest": "DIGEST",
}


def images(ctx: Ctx, argv: Sequence[str]) -> int:
    spec = [
        flag("--all,-a", "bool", False),
        flag("--quiet,-q", "bool", False),
        flag("--filter,-f", "list"),
        flag("--format"),
        flag("--no-trunc", "bool", False),
        flag("--digests", "bool", False),
    ]
    values, rest = parse(ctx.verb, argv, spec)
    filters = parse_filters(ctx.verb, values["filter"])
    if rest:
        filters.setdefault("reference", {})[rest[0]] = True
    query = {"all": values["all"], "filters": json.dumps(filters) if filters else None}
    rows = []
    for image in ctx.client.get("/images/json", query):
        short = image["Id"] if values["no_trunc"] else image["Id"].removeprefix("sha256:")[:12]
        for tag in image.get("RepoTags") or ["<none>:<none>"]:
            repo, _, name = tag.rpartition(":")
            rows.append(
                {
                    "Repository": repo,
                    "Tag": name,
                    "ID": short,
                    "Digest": "<none>",
                    "CreatedSince": output.ago(float(image.get("Created", 0))),
                    "CreatedAt": str(image.get("Created", "")),
                    "Size": human_size(image.get("Size", 0)),
                }
            )
    if values["quiet"]:
        output.emit("".join(f"{r}\n" for r in dict.fromkeys(r["ID"] for r in rows)))
    else:
        cols = ["Repository", "Tag", "ID", "CreatedSince", "Size"]
        output.emit(output.listing(values["format"], rows, IMAGE_HEADERS, cols))
    return 0


def load(ctx: Ctx, argv: Sequence[str]) -> int:
    values, _ = parse(ctx.verb, argv, [flag("--input,-i"), flag("--quiet,-q", "bool", False)])
    if values["input"]:
        source: Any = open(values["input"], "rb")  # noqa: SIM115 - closed by `with` below
        length: int | None = os.fstat(source.fileno()).st_size
    else:
        if sys.stdin.isatty():
            err("Error: requested load from stdin, but stdin is empty")
            return 1
        source, length = sys.stdin.buffer, None
    with source:
        response = ctx.client.request(
            "POST",
            "/images/load",
            {"quiet": values["quiet"]},
            data=source,
            length=length,
            content_type="application/x-tar",
        )
        for message in response.lines():
            if "error" in message:
                err(message["error"])
                return 1
            output.emit(message.get("stream", ""))
    return 0


def save(ctx: Ctx, argv: Sequence[str]) -> int:
    values, names = parse(ctx.verb, argv, [flag("--output,-o")])
    if not names:
        raise UsageError(ctx.verb, '"refctl save" requires at least 1 argument.')
    if not values["output"] and sys.stdout.isatty():
        err("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        return 1
    response = ctx.client.request("GET", "/images/get", {"names": names})
    if values["output"]:
        tmp = values["output"] + ".refctl-tmp"
        with open(tmp, "wb") as out:
            for chunk in response.chunks():
                out.write(chunk)
        os.replace(tmp, values["output"])
    else:
        for chunk in response.chunks():
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
    return 0


def import_(ctx: Ctx, argv: Sequence[str]) -> int:
    values, rest = parse(
        ctx.verb, argv, [flag("--change,-c", "list"), flag("--message,-m"), flag("--platform")]
    )
    if not 1 <= len(rest) <= 2:
        raise UsageError(ctx.verb, '"refctl import" requires at least 1 and at most 2 arguments.')
    repo, tag = split_ref(rest[1]) if len(rest) == 2 else ("", "")
    query = {
        "fromSrc": "-",
        "repo": repo or None,
        "tag": tag or None,
        "message": values["message"],
        "changes": values["change"],
    }
    if rest[0] == "-":
        source: Any = sys.stdin.buffer
        length: int | None = None
    else:
        source = open(rest[0], "rb")  # noqa: SIM115 - closed by `with` below
        length = os.fstat(source.fileno()).st_size
    with source:
        response = ctx.client.request(
            "POST",
            "/images/create",
            query,
            data=source,
            length=length,
            content_type="application/x-tar",
        )
        for message in response.lines():
            if "error" in message:
                err(message["error"])
                return 1
            output.emit(message.get("status", "") + "\n")
    return 0


def _progress(ctx: Ctx, response: Any) -> int:
    """Pull and push messages as the docker CLI prints them without a terminal."""
    for message in response.lines():
        if "error" in message:
            err(message["error"])
            return 1
        status = message.get("status")
        if not status or message.get("progressDetail", {}).get("current"):
            continue
        ident = message.get("id")
        output.emit(f"{ident}: {status}\n" if ident else f"{status}\n")
    return 0


def pull(ctx: Ctx, argv: Sequence[str]) -> int:
    _values, rest = parse(
        ctx.verb,
        argv,
        [
            flag("--quiet,-q", "bool", False),
            flag("--all-tags,-a", "bool", False),
            flag("--platform"),
        ],
    )
    if len(rest) != 1:
        raise UsageError(ctx.verb, '"refctl pull" requires exactly 1 argument.')
    name, tag = split_ref(rest[0])
    if "@" in name:
        name, _, digest = name.partition("@")
        query = {"fromImage": name, "tag": digest}
    else:
        if not tag:
            output.emit("Using default tag: latest\n")
        query = {"fromImage": name, "tag": tag or "latest"}
    try:
        code = _progress(ctx, ctx.client.request("POST", "/images/create", query))
    except ApiError as e:
        err(daemon_error(e))
        return 1
    if code == 0:
        output.emit(f"{name}:{tag or 'latest'}\n" if "@" not in rest[0] else f"{rest[0]}\n")
    return code


def push(ctx: Ctx, argv: Sequence[str]) -> int:
    _, rest = parse(
        ctx.verb, argv, [flag("--all-tags,-a", "bool", False), flag("--quiet,-q", "bool", False)]
    )
    if len(rest) != 1:
        raise UsageError(ctx.verb, '"refctl push" requires exactly 1 argument.')
    name, tag = split_ref(rest[0])
    if not tag:
        output.emit("Using default tag: latest\n")
    try:
        return _progress(
            ctx,
            ctx.client.request(
                "POST",
                f"/images/{name}/push",
                {"tag": tag or "latest"},
                headers={"X-Registry-Auth": "e30="},
            ),
        )
    except ApiError as e:
        err(daemon_error(e))
        return 1


def tag(ctx: Ctx, argv: Sequence[str]) -> int:
    _, rest = parse(ctx.verb, argv, [])
    if len(rest) != 2:
        raise UsageError(ctx.verb, '"refctl tag" requires exactly 2 arguments.')
    repo, name = split_ref(rest[1])
    ctx.client.request("POST", f"/images/{rest[0]}/tag", {"repo": repo, "tag": name or "latest"})
    return 0


def rmi(ctx: Ctx, argv: Sequence[str]) -> int:
    values, names = parse(
        ctx.verb, argv, [flag("--force,-f", "bool", False), flag("--no-prune", "bool", False)]
    )
    failed = False
    for name in names:
        try:
            result = ctx.client.request(
                "DELETE", f"/images/{name}", {"force": values["force"]}
            ).json()
        except ApiError as e:
            err(daemon_error(e))
            failed = True
            continue
        for item in result or []:
            for kind, value in item.items():
                output.emit(f"{kind}: {value}\n")
    return 1 if failed else 0
