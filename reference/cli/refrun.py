"""refrun: the reference OCI runtime, with runc's command line.

    refrun [global flags] VERB [flags] [args]

Global flags (before the verb): --root DIR (default /run/refrun), --log FILE,
--log-format text|json, --debug, --systemd-cgroup (refused: not supported), --rootless
(accepted and ignored, as runc's "auto"). Each verb lives in reference.oci.verbs.<module> and
is imported only when called: start-up time is paid on every runtime call a container engine
makes, so `refrun state` must not import what `refrun create` needs.
"""

from __future__ import annotations

import sys

from reference.errors import RefError

VERSION = "0.1.0"

# verb -> module under reference.oci.verbs
VERBS: dict[str, str] = {
    "create": "create",
    "start": "start",
    "run": "run",
    "state": "state",
    "kill": "kill",
    "delete": "delete",
    "list": "list",
    "ps": "ps",
    "pause": "pause",
    "resume": "pause",
    "update": "update",
    "exec": "exec",
    "spec": "spec",
    "features": "features",
}

USAGE = """usage: refrun [--root DIR] [--log FILE] [--log-format text|json] [--debug] VERB [ARGS]

verbs:
  create [--bundle DIR] [--pid-file F] [--console-socket S] [--no-pivot] ID
  start ID                      run [-d] [--bundle DIR] [--pid-file F] ID
  state ID                      list [-q] [--format table|json]
  kill [--all] ID [SIGNAL]      delete [--force] ID
  ps [--format table|json] ID   pause ID | resume ID
  update [--memory N] [--memory-swap N] [--pids-limit N] [--cpu-quota N] [--cpu-period N]
         [--cpu-shares N] [--cpuset-cpus L] [-r FILE] ID
  exec [-d] [--process F] [--env K=V] [--cwd D] [--tty] ID [COMMAND ARGS...]
  spec [--bundle DIR] [--rootless]    features    --version
"""


def _version() -> str:
    from reference.oci.default import OCI_VERSION

    return f"refrun version {VERSION}\nspec: {OCI_VERSION}\n"


def _global_flags(args: list[str]) -> tuple[dict[str, str | bool], int]:
    """The flags before the verb, and the verb's index; `--version`/`--help` give index -1."""
    opts: dict[str, str | bool] = {}
    i = 0
    while i < len(args) and args[i].startswith("-"):
        name, eq, value = args[i].partition("=")
        name = "--" + name.lstrip("-") if len(name.lstrip("-")) > 1 else name
        i += 1
        if name in ("--root", "--log", "--log-format", "--criu", "--rootless"):
            if not eq:
                if i >= len(args):
                    raise RefError("flag needs an argument", obj=name)
                value = args[i]
                i += 1
            opts[name] = value
        elif name in ("--debug", "--systemd-cgroup"):
            opts[name] = value != "false" if eq else True
        elif name in ("--version", "-v"):
            sys.stdout.write(_version())
            return opts, -1
        elif name in ("--help", "-h"):
            sys.stdout.write(USAGE)
            return opts, -1
        else:
            raise RefError("flag provided but not defined", obj=name)
    return opts, i


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    verb = ""
    try:
        opts, i = _global_flags(args)
    except RefError as e:
        from reference.oci import runlog

        runlog.error(runlog.Globals(), str(e))
        return e.exit_code
    if i < 0:
        return 0  # --version or --help: answered without importing anything else
    from reference.oci import runlog

    g = runlog.Globals()
    try:
        g = runlog.Globals(
            root=str(opts.get("--root", runlog.DEFAULT_ROOT)),
            log=str(opts.get("--log", "")),
            log_format=str(opts.get("--log-format", "text")),
            debug=bool(opts.get("--debug", False)),
        )
        if opts.get("--systemd-cgroup"):
            from reference.errors import UnsupportedError

            raise UnsupportedError(
                "the systemd cgroup driver is not supported; use cgroupfs", obj="--systemd-cgroup"
            )
        if i >= len(args):
            sys.stderr.write(USAGE)
            return 2
        if args[i] in ("help", "--help"):
            sys.stdout.write(USAGE)
            return 0
        module_name = VERBS.get(args[i])
        if module_name is None:
            raise RefError("unknown command", obj=args[i])
        verb = args[i]
        if verb in ("create", "run", "exec"):
            # These move a process into a cgroup; let the kernel's migration lock warm up on
            # a thread while the verb's modules load (see reference/cgroups/warmup.py).
            from reference.cgroups import warmup

            warmup.start()
        # __import__ rather than importlib: importing importlib costs a millisecond.
        module = __import__(f"reference.oci.verbs.{module_name}", fromlist=["main"])
        code: int = module.main(g, verb, args[i + 1 :])
        return code
    except RefError as e:
        runlog.error(g, f"{verb} failed: {e}" if verb else str(e))
        return e.exit_code
    except KeyboardInterrupt:
        return 130
