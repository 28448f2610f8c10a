"""Image references as Docker spells them: `[domain[:port]/]path[:tag][@digest]`.

Stored and shown in the familiar form Docker prints: `docker.io/library/bb` is `bb`, a name
without tag or digest means `:latest`. The grammar is distribution/reference's.
"""

from __future__ import annotations

import re

from reference.errors import ConfigError

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)
_HEX_PREFIX = re.compile(r"(?:sha256:)?[0-9a-f]{1,64}")
_NAME_MAX = 255
DEFAULT_DOMAIN = "docker.io"


class Reference:
    """A parsed reference; `name` is familiar (`bb`, `127.0.0.1:5000/bb`)."""

    __slots__ = ("digest", "name", "tag")

    def __init__(self, name: str, tag: str | None, digest: str | None) -> None:
        self.name = name
        self.tag = tag
        self.digest = digest

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def domain(self) -> str:
        """The registry host (`docker.io` for familiar names)."""
        first, sep, _ = self.name.partition("/")
        return first if sep and _is_domain(first) else DEFAULT_DOMAIN

    @property
    def path(self) -> str:
        """The repository path on its registry (`library/bb` for `bb`)."""
        first, sep, rest = self.name.partition("/")
        if sep and _is_domain(first):
            return rest
        return self.name if sep else f"library/{self.name}"


def _is_domain(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def _familiar(name: str) -> str:
    first, sep, rest = name.partition("/")
    if sep and first in (DEFAULT_DOMAIN, "index.docker.io"):
        name = rest
    elif sep and _is_domain(first):
        return name
    if name.startswith("library/") and name.count("/") == 1:
        return name.removeprefix("library/")
    return name


def parse(ref: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise; ConfigError('invalid reference format', obj=ref) if malformed.

    With `default_tag`, a reference with neither tag nor digest gets `latest`.
    """
    match = _REFERENCE.fullmatch(ref)
    if match is None:
        lowered = _REFERENCE.fullmatch(ref.lower())
        reason = ": repository name must be lowercase" if lowered else ""
        raise ConfigError(f"invalid reference format{reason}", obj=ref)
    name = match["name"]
    if len(name) > _NAME_MAX:
        reason = f"repository name must not be more than {_NAME_MAX} characters"
        raise ConfigError(f"invalid reference format: {reason}", obj=ref)
    first, sep, _ = name.partition("/")
    if sep and not _is_domain(first) and first != first.lower():
        raise ConfigError("invalid reference format: repository name must be lowercase", obj=ref)
    tag, digest = match["tag"], match["digest"]
    if tag is None and digest is None and default_tag:
        tag = "latest"
    return Reference(_familiar(name), tag, digest)


def normalize(ref: str) -> str:
    """`bb` → `bb:latest`, `docker.io/library/bb:1` → `bb:1`."""
    return str(parse(ref))


def is_id_prefix(text: str) -> bool:
    """Whether `text` can name an image by (a prefix of) its id."""
    return bool(_HEX_PREFIX.fullmatch(text))


def short_id(image_id: str) -> str:
    """The 12-digit form Docker prints in messages."""
    return image_id.removeprefix("sha256:")[:12]
