"""refctl, the reference engine's client: docker's verbs and flags over refd's API.

    refctl [-H unix:///path/refd.sock] VERB [flags] [args]

The daemon is found through -H/--host or $DOCKER_HOST (unix:// only), default
unix:///var/run/refd.sock. Exit codes are docker's: a failed verb exits 1, a usage error or
a daemon error in run/create 125, and a foreground `run` exits with the container's code
(126/127 when its command cannot be run). Only the module of the verb run is imported.
"""

from __future__ import annotations

import sys

# verb (and docker's two-word aliases) → (module under reference.cli.ctl, function)
VERBS: dict[str, tuple[str, str]] = {
    "run": ("containers", "run"),
    "create": ("containers", "create"),
    "start": ("containers", "start"),
    "ps": ("containers", "ps"),
    "logs": ("containers", "logs"),
    "exec": ("containers", "exec_"),
    "stop": ("containers", "stop"),
    "restart": ("containers", "stop"),
    "kill": ("containers", "kill"),
    "rm": ("containers", "rm"),
    "pause": ("containers", "pause"),
    "unpause": ("containers", "pause"),
    "update": ("containers", "update"),
    "wait": ("containers", "wait"),
    "top": ("containers", "top"),
    "diff": ("containers", "diff"),
    "commit": ("containers", "commit"),
    "inspect": ("inspect", "inspect"),
    "stats": ("inspect", "stats"),
    "images": ("images", "images"),
    "load": ("images", "load"),
    "save": ("images", "save"),
    "import": ("images", "import_"),
    "pull": ("images", "pull"),
    "push": ("images", "push"),
    "tag": ("images", "tag"),
    "rmi": ("images", "rmi"),
    "info": ("system", "info"),
    "version": ("system", "version"),
    "events": ("system", "events"),
    "network": ("networks", "network"),
    "port": ("networks", "port"),
}
ALIASES: dict[tuple[str, str], str] = {
    ("container", "ls"): "ps",
    ("container", "list"): "ps",
    ("container", "inspect"): "inspect",
    ("container", "rm"): "rm",
    ("container", "run"): "run",
    ("container", "create"): "create",
    ("container", "start"): "start",
    ("container", "stop"): "stop",
    ("container", "logs"): "logs",
    ("container", "exec"): "exec",
    ("container", "wait"): "wait",
    ("container", "kill"): "kill",
    ("container", "pause"): "pause",
    ("container", "unpause"): "unpause",
    ("container", "update"): "update",
    ("container", "top"): "top",
    ("container", "diff"): "diff",
    ("container", "commit"): "commit",
    ("container", "stats"): "stats",
    ("container", "port"): "port",
    ("image", "ls"): "images",
    ("image", "list"): "images",
    ("image", "load"): "load",
    ("image", "save"): "save",
    ("image", "import"): "import",
    ("image", "pull"): "pull",
    ("image", "push"): "push",
    ("image", "tag"): "tag",
    ("image", "rm"): "rmi",
    ("system", "info"): "info",
    ("system", "events"): "events",
}
USAGE = """Usage:  refctl [-H unix:///path] COMMAND

Commands:
  run create start ps logs exec stop restart kill rm pause unpause update wait top diff
  commit inspect stats images load save import pull push tag rmi info version events
  port network (create ls inspect rm connect disconnect prune)
  (and the two-word forms: container ls, image inspect, image ls, ...)
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    host: str | None = None
    while args and args[0].startswith("-"):
        head = args.pop(0)
        if head in ("-H", "--host"):
            if not args:
                sys.stderr.write("flag needs an argument: -H\n")
                return 125
            host = args.pop(0)
        elif head.startswith(("--host=", "-H=")):
            host = head.split("=", 1)[1]
        elif head in ("-v", "--version"):
            sys.stdout.write("refctl version 0.1.0, API 1.41\n")
            return 0
        elif head in ("-h", "--help"):
            sys.stdout.write(USAGE)
            return 0
        elif head in ("-D", "--debug", "--tls", "--tlsverify"):
            continue
        else:
            sys.stderr.write(f"unknown flag: {head}\nSee 'refctl --help'.\n")
            return 125
    if not args:
        sys.stdout.write(USAGE)
        return 0
    verb = args.pop(0)
    if verb in ("container", "image", "system") and args:
        alias = ALIASES.get((verb, args[0]))
        if alias is None and (verb, args[0]) == ("image", "inspect"):
            return _run(host, "image inspect", ("inspect", "image_inspect"), args[1:])
        if alias is None:
            sys.stderr.write(f"refctl: '{verb} {args[0]}' is not a refctl command.\n")
            return 1
        verb = alias
        args.pop(0)
    if verb not in VERBS:
        sys.stderr.write(f"refctl: '{verb}' is not a refctl command.\nSee 'refctl --help'\n")
        return 1
    return _run(host, verb, VERBS[verb], args)


def _run(host: str | None, verb: str, target: tuple[str, str], args: list[str]) -> int:
    from reference.cli.ctl.client import ApiError, Client, ConnectError, host_from
    from reference.cli.ctl.common import Ctx, Failed, daemon_error, err
    from reference.cli.ctl.flags import UsageError
    from reference.errors import RefError

    if args and args[0] == "--help":
        sys.stdout.write(f"Usage:  refctl {verb} [OPTIONS] ...\n")
        return 0
    module = __import__(f"reference.cli.ctl.{target[0]}", fromlist=[target[1]])
    try:
        ctx = Ctx(Client(host_from(host)), verb)
        code: int = getattr(module, target[1])(ctx, args)
        return code
    except UsageError as e:
        err(f"refctl: {e}" if verb in ("run", "create") else str(e))
        return 125 if verb in ("run", "create") else 1
    except ApiError as e:
        err(daemon_error(e, "refctl: " if verb in ("run", "create") else ""))
        return 125 if verb in ("run", "create") else 1
    except (ConnectError, RefError) as e:
        err(str(e))
        return 125 if verb in ("run", "create") else 1
    except Failed as e:
        return e.code
    except BrokenPipeError:
        return 1
    except KeyboardInterrupt:
        return 130
