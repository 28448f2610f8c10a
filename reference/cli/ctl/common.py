"""What every refctl verb shares: the context (client, verb), error reporting in docker's
words and exit codes, the multiplexed stream printer, and image reference splitting."""

from __future__ import annotations

import sys

from reference.cli.ctl.client import ApiError, Client, Response
from reference.oci import fastjson

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; typing costs ms to import
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any


class Ctx:
    """What a verb gets: the client and its own name (for messages). A plain class: the
    dataclasses import alone costs refctl ~15 ms on every call."""

    def __init__(self, client: Client, verb: str) -> None:
        self.client = client
        self.verb = verb


class Failed(Exception):
    """Stop the verb with this exit code (the message is already printed)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def daemon_error(e: ApiError, prefix: str = "") -> str:
    return f"{prefix}Error response from daemon: {e}"


def err(text: str) -> None:
    sys.stderr.write(text.rstrip("\n") + "\n")
    sys.stderr.flush()


def each(names: Iterable[str], action: Callable[[str], Any], *, echo: bool = True) -> int:
    """Run `action` for every name, printing the name on success and docker's error line on
    failure; exit 1 if any failed (docker stop/rm/pause/... behave so)."""
    failed = False
    for name in names:
        try:
            action(name)
        except ApiError as e:
            err(daemon_error(e))
            failed = True
            continue
        if echo:
            sys.stdout.write(f"{name}\n")
    sys.stdout.flush()
    return 1 if failed else 0


def copy_frames(response: Response) -> None:
    """The multiplexed stream to our stdout and stderr."""
    out, error = sys.stdout.buffer, sys.stderr.buffer
    for stream, data in response.frames():
        target = error if stream == 2 else out
        target.write(data)
        target.flush()


def split_ref(ref: str) -> tuple[str, str]:
    """'host:5000/repo:tag' → ('host:5000/repo', 'tag'); no tag → ''."""
    name, sep, tag = ref.rpartition(":")
    if sep and "/" not in tag:
        return name, tag
    return ref, ""


def print_json(value: Any) -> None:
    sys.stdout.write(fastjson.dumps(value, indent=4) + "\n")
