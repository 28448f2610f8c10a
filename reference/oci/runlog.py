"""refrun's global options and its log (`--log FILE --log-format text|json`).

containerd and dockerd pass `--log` and read the last error from that file when a runtime call
fails, so every error goes there as well as to stderr, in logrus's formats (what runc writes):
  text: time="2024-05-01T10:00:00Z" level=error msg="container does not exist: c1"
  json: {"level":"error","msg":"container does not exist: c1","time":"2024-05-01T10:00:00Z"}
"""

from __future__ import annotations

import os
import sys
import time

from reference.errors import ConfigError
from reference.oci import fastjson

DEFAULT_ROOT = "/run/refrun"
_T0 = time.perf_counter()


class Globals:
    """Options given before the verb."""

    __slots__ = ("debug", "log", "log_format", "root")

    def __init__(
        self,
        root: str = DEFAULT_ROOT,
        log: str = "",
        log_format: str = "text",
        debug: bool = False,
    ) -> None:
        if log_format not in ("text", "json"):
            raise ConfigError(
                f"unknown log format {log_format!r} (text or json)", obj="--log-format"
            )
        self.root = root
        self.log = log
        self.log_format = log_format
        self.debug = debug


def rfc3339(ns: int | None = None, *, nanos: bool = False) -> str:
    """UTC time as Go's RFC3339 (or RFC3339Nano, which runc uses for `created`)."""
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if nanos and frac:
        stamp += "." + f"{frac:09d}".rstrip("0")
    return stamp + "Z"


def format_line(level: str, msg: str, fmt: str, ns: int | None = None) -> str:
    stamp = rfc3339(ns)
    if fmt == "json":
        return fastjson.dumps({"level": level, "msg": msg, "time": stamp})
    return f"time={fastjson.dumps(stamp)} level={level} msg={fastjson.dumps(msg)}"


def write(g: Globals, level: str, msg: str) -> None:
    """Append one line to --log, if given. A log that cannot be written must not hide the
    error being reported, so failures here go to stderr only."""
    if not g.log:
        return
    line = format_line(level, msg, g.log_format) + "\n"
    try:
        fd = os.open(g.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError as e:
        print(f"refrun: cannot write log {g.log}: {e.strerror}", file=sys.stderr)


def error(g: Globals, msg: str) -> None:
    write(g, "error", msg)
    print(f"refrun: {msg}", file=sys.stderr, flush=True)


def warn(g: Globals, msg: str) -> None:
    write(g, "warning", msg)
    print(f"refrun: warning: {msg}", file=sys.stderr, flush=True)


def debug(g: Globals, msg: str) -> None:
    """--debug: progress with the milliseconds since refrun started (where the time goes)."""
    if g.debug:
        msg = f"[{(time.perf_counter() - _T0) * 1000:7.1f} ms] {msg}"
        write(g, "debug", msg)
        if not g.log:
            print(f"refrun: debug: {msg}", file=sys.stderr, flush=True)
