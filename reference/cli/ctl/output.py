"""Output helpers: tabwriter-like tables (docker's 3-space padding), --format handling with
`table` headers, and the human times docker prints ("5 seconds ago")."""

from __future__ import annotations

import sys
import time

TYPE_CHECKING = False  # mypy treats this as typing.TYPE_CHECKING; typing costs ms to import
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    Row = Mapping[str, Any]
    Printer = Callable[[str], None]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = []
    for row in [list(headers), *rows]:
        cells = [c.ljust(w) for c, w in zip(row, widths, strict=True)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def formatted(fmt: str, rows: Sequence[Row], headers: Mapping[str, str]) -> str:
    """--format: one rendered line per row; with `table`, aligned under a header row whose
    cells are the placeholders' names as docker prints them (CONTAINER ID, NAMES, ...)."""
    from reference.cli.ctl import template  # (re, shlex and json: only verbs that format)

    if not template.is_table(fmt):
        return "".join(template.render(fmt, row) + "\n" for row in rows)
    body = template.strip_table(fmt)
    header_row = template._ACTION.sub(
        lambda m: headers.get(m[1].lstrip("."), m[1].lstrip(".").upper()), body
    )
    rendered = [template.render(body, row).split("\t") for row in rows]
    head = header_row.replace("\\t", "\t").split("\t")
    width = max([len(head), *(len(r) for r in rendered)])

    def pad(cells: list[str]) -> list[str]:
        return [*cells, *[""] * (width - len(cells))]

    return table(pad(head), [pad(r) for r in rendered])


def listing(
    fmt: str | None, rows: Sequence[Row], headers: Mapping[str, str], columns: Sequence[str]
) -> str:
    """A list verb's output (ps, images, network ls): the rows through --format, or the
    table of `columns` under their docker headers."""
    if fmt:
        return formatted(fmt, rows, headers)
    return table([headers[c] for c in columns], [[r[c] for c in columns] for r in rows])


def emit(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def epoch(stamp: str) -> float:
    try:
        return time.mktime(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    except ValueError:
        return 0.0


def ago(seconds_since_epoch: float) -> str:
    """go-units HumanDuration + " ago"."""
    seconds = max(0, int(time.time() - seconds_since_epoch))
    if seconds < 1:
        return "Less than a second ago"
    if seconds < 60:
        return f"{seconds} seconds ago" if seconds > 1 else "1 second ago"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} minutes ago" if minutes > 1 else "About a minute ago"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} hours ago" if hours > 1 else "About an hour ago"
    return f"{hours // 24} days ago"


def truncate(text: str, size: int, enabled: bool = True) -> str:
    if not enabled or len(text) <= size:
        return text
    return text[: size - 1] + "…"
