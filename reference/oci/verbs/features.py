"""`refrun features`: what this runtime implements, in runc's `features` JSON shape
(runtime-spec features.md), so that engines can ask before they try."""

from __future__ import annotations

import sys

from reference.oci import fastjson, hooks, mountopts
from reference.oci.default import OCI_VERSION
from reference.oci.runlog import Globals
from reference.oci.validate import CAPABILITIES


def features() -> dict[str, object]:
    options = sorted({*mountopts.FLAGS, *mountopts.PROPAGATION})
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(hooks.STAGES),
        "mountOptions": options,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": list(CAPABILITIES),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": _seccomp()},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"org.opencontainers.refrun.version": _version()},
    }


def _seccomp() -> bool:
    from importlib.util import find_spec

    return find_spec("reference.oci.seccomp") is not None


def _version() -> str:
    from reference.cli.refrun import VERSION

    return VERSION


def main(g: Globals, verb: str, argv: list[str]) -> int:
    sys.stdout.write(fastjson.dumps(features(), indent=4) + "\n")
    return 0
