"""When the host lists only loopback nameservers (unreachable from a container's network
namespace), the engine writes its default public nameservers into /etc/resolv.conf.

The host's /etc/resolv.conf is never changed: the engine is made to read a substitute through a
bind mount in a private mount namespace: a private dockerd for Docker (the daemon reads the
file), the CLI itself for daemonless podman. Nothing resolves; only the file is read.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures.etcfiles import ipv4_only, is_loopback, parse_resolv_conf
from fixtures.image.build import ensure_artifacts
from fixtures.private_dockerd import private_dockerd
from fixtures.session import CACHE_DIR, unique_name
from fixtures.targets.base import Driver
from fixtures.targets.engine_cli import CliEngine
from fixtures.targets.reference import ReferenceDriver

LOOPBACK_ONLY_RESOLV_CONF = (
    "nameserver 127.0.0.53\nnameserver 127.0.0.1\nsearch cts-fallback.test\noptions ndots:3\n"
)


def from_private_dockerd(target: Driver) -> str:
    """A private dockerd whose /etc/resolv.conf lists only loopback servers; the file it
    writes for a --network none container (legacy rules, no network set up at all)."""
    if shutil.which("dockerd") is None:
        pytest.skip("dockerd is not installed: no private daemon to give another resolv.conf")
    overlays = {"/etc/resolv.conf": LOOPBACK_ONLY_RESOLV_CONF}
    with private_dockerd(f"cts-etc-{secrets.token_hex(4)}", overlays) as daemon:
        image = ensure_artifacts(CACHE_DIR / "image")
        tag = f"cts-probe:{image.digest[:12]}"
        imported = daemon.cli("import", str(image.tarball), tag)
        assert imported.exit_code == 0, imported.stderr
        done = daemon.cli(
            "run", "--rm", "--pull=never", "--network", "none", tag, "/bin/cat", "/etc/resolv.conf"
        )
        assert done.exit_code == 0, f"{done.stderr}\n{daemon.log()}"
        return done.stdout


def from_private_refd(target: Driver) -> str:
    """A private refd (in an engine host of its own) whose /etc/resolv.conf lists only
    loopback servers; the file it writes for a --network none container."""
    overlays = {"/etc/resolv.conf": LOOPBACK_ONLY_RESOLV_CONF}
    with tempfile.TemporaryDirectory(prefix="cts-etc-") as scratch:
        refd = ReferenceDriver("reference-etc", Path(scratch), overlays=overlays)
        image = ensure_artifacts(CACHE_DIR / "image")
        refd.setup(image.tarball, image.rootfs, image.digest)
        try:
            done = refd.call(
                "run", "--rm", "--network", "none", refd.image, "/bin/cat", "/etc/resolv.conf",
                verb="run", obj="resolv.conf",
            )  # fmt: skip
        finally:
            refd.teardown()
    return done.stdout


def from_cli_in_private_mount_namespace(target: Driver) -> str:
    """A daemonless engine's CLI run where /etc/resolv.conf lists only loopback servers; the
    file it writes for a container on its default network (podman writes none for
    --network none). Run with --rm in the foreground, so nothing outlives the namespace."""
    assert isinstance(target, CliEngine), f"{target.name} is not driven through a CLI"
    argv = target.cli(
        "run", "--rm", "--pull=never", "--name", unique_name(), target.image,
        "/bin/cat", "/etc/resolv.conf",
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="cts-etc-") as scratch:
        substitute = Path(scratch) / "resolv.conf"
        substitute.write_text(LOOPBACK_ONLY_RESOLV_CONF)
        script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
        done = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script, substitute, *argv],
            capture_output=True,
            text=True,
            timeout=120,
            env=target.env(),
            stdin=subprocess.DEVNULL,
        )
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass(frozen=True)
class Fallback:
    nameservers: tuple[str, ...]  # the IPv4 defaults (IPv6 ones depend on the network)
    resolv_conf: Callable[[Driver], str]  # what an engine of this kind writes, host loopback-only


# By target kind: what the engine falls back to, and how to make it read a host resolv.conf
# of our choosing.
FALLBACKS = {
    "docker": Fallback(("8.8.8.8", "8.8.4.4"), from_private_dockerd),
    "podman": Fallback(("8.8.8.8", "8.8.4.4"), from_cli_in_private_mount_namespace),
    "reference": Fallback(("8.8.8.8", "8.8.4.4"), from_private_refd),
}


@pytest.mark.req("ETC-20")
@pytest.mark.needs("etc-files")
def test_loopback_only_host_falls_back_to_default_nameservers(target: Driver) -> None:
    kind = target.name.split(":", 1)[0]
    if kind not in FALLBACKS:
        pytest.skip(f"no known way to give a {kind} engine another host resolv.conf")
    fallback = FALLBACKS[kind]
    found = parse_resolv_conf(fallback.resolv_conf(target))
    host = parse_resolv_conf(LOOPBACK_ONLY_RESOLV_CONF)
    assert not [n for n in found.nameservers if is_loopback(n)], found
    assert ipv4_only(found.nameservers) == fallback.nameservers
    assert (found.search, sorted(found.options)) == (host.search, sorted(host.options))
