"""The engine answers its API on its unix socket: /_ping, /version and the Api-Version header.

What the daemon reports is the requirement here (the API contract), so the responses are the
witness; they are read over the socket directly, not through the target's client.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from fixtures.targets import engine_api
from fixtures.targets.base import Driver

# Docker Engine release → the API version it serves (docs' version matrix). A release serves
# the version of the latest row at or below it.
API_VERSION_BY_RELEASE: dict[tuple[int, int], tuple[int, int]] = {
    (20, 10): (1, 41),
    (23, 0): (1, 42),
    (24, 0): (1, 43),
    (25, 0): (1, 44),
    (26, 0): (1, 45),
    (27, 0): (1, 46),
    (27, 2): (1, 47),
    (28, 0): (1, 48),
    (28, 1): (1, 49),
    (28, 2): (1, 50),
    (28, 3): (1, 51),
    (29, 0): (1, 52),
    (29, 2): (1, 53),
    (29, 3): (1, 54),
    (29, 6): (1, 55),
}
# refd's own releases → the Engine API version it speaks (docs/refd.md: a subset of v1.41).
API_VERSION_BY_KIND = {"docker": API_VERSION_BY_RELEASE, "reference": {(0, 1): (1, 41)}}
API_VERSION = re.compile(r"^(\d+)\.(\d+)$")
# Requests whose responses must all carry the header (a cheap GET of each kind of route).
PATHS = ("/_ping", "/version", "/info", "/containers/json?limit=1", "/images/json")


def socket_of(target: Driver) -> Path:
    socket = target.engine_socket()
    assert socket is not None, f"{target.name} declares an engine but names no socket"
    return socket


def version_document(socket: Path) -> dict[str, Any]:
    document: dict[str, Any] = engine_api.get_json(str(socket), "/version")
    return document


def header(headers: dict[str, str], name: str) -> str | None:
    """HTTP header names are case-insensitive."""
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def expected_api_version(release: str, kind: str = "docker") -> tuple[int, int] | None:
    match = re.match(r"^(\d+)\.(\d+)", release)
    if match is None or kind not in API_VERSION_BY_KIND:
        return None
    found = (int(match[1]), int(match[2]))
    rows = [api for rel, api in sorted(API_VERSION_BY_KIND[kind].items()) if rel <= found]
    return rows[-1] if rows else None


@pytest.mark.req("ARCH-04")
@pytest.mark.needs("engine")
def test_ping_answers_ok(target: Driver) -> None:
    status, _, body = engine_api.request(str(socket_of(target)), "GET", "/_ping")
    assert (status, body) == (200, b"OK")


@pytest.mark.req("ARCH-02")
@pytest.mark.needs("engine")
def test_version_reports_the_api_version_of_the_release(target: Driver) -> None:
    document = version_document(socket_of(target))
    api = API_VERSION.match(str(document.get("ApiVersion", "")))
    assert api, f"/version has no ApiVersion of the form N.M: {document}"
    expected = expected_api_version(str(document.get("Version", "")), target.kind or "docker")
    if expected is None:
        pytest.skip(f"release {document.get('Version')!r} is not in the API version matrix")
    assert (int(api[1]), int(api[2])) >= expected, (
        f"release {document['Version']} serves API {api[0]}, older than {expected}"
    )


@pytest.mark.req("ARCH-04")
@pytest.mark.needs("engine")
def test_responses_carry_the_api_version_header(target: Driver) -> None:
    socket = socket_of(target)
    reported = version_document(socket).get("ApiVersion")
    for path in PATHS:
        status, headers, _ = engine_api.request(str(socket), "GET", path)
        assert status == 200, f"GET {path}: HTTP {status}"
        assert header(headers, "Api-Version") == reported, (
            f"GET {path}: Api-Version header {header(headers, 'Api-Version')!r}, "
            f"/version says {reported!r}"
        )
