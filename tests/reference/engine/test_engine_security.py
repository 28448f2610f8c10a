"""Capabilities and the seccomp profile as dockerd computes them."""

from __future__ import annotations

import pytest

from reference.engine import security
from reference.errors import ConfigError
from reference.oci.default import DOCKER_DEFAULT_CAPS


def test_defaults_are_dockers_fourteen_within_the_host_set() -> None:
    caps = security.capabilities([], [])
    assert set(caps) == set(DOCKER_DEFAULT_CAPS) & security.host_bounding_set()


def test_add_and_drop_with_and_without_prefix() -> None:
    caps = security.capabilities(["NET_ADMIN"], ["kill", "CAP_CHOWN"])
    assert "CAP_NET_ADMIN" in caps
    assert "CAP_KILL" not in caps
    assert "CAP_CHOWN" not in caps


def test_drop_all_keeps_only_the_added() -> None:
    assert security.capabilities(["NET_RAW"], ["ALL"]) == ["CAP_NET_RAW"]


def test_unknown_names_are_refused() -> None:
    with pytest.raises(ConfigError, match='Unknown capability to add: "CAP_FLY"'):
        security.capabilities(["FLY"], [])


def test_profile_conversion_follows_caps_and_arch() -> None:
    profile = security.default_profile()
    plain = security.seccomp_section(profile, list(DOCKER_DEFAULT_CAPS))
    assert plain["defaultAction"] == "SCMP_ACT_ERRNO"
    goarch, arch = security.native_arch()
    assert plain["architectures"][0] == arch
    names = {n for rule in plain["syscalls"] for n in rule["names"]}
    assert "mount" not in names  # CAP_SYS_ADMIN only
    assert "chroot" in names  # CAP_SYS_CHROOT is a default
    admin = security.seccomp_section(profile, [*DOCKER_DEFAULT_CAPS, "CAP_SYS_ADMIN"])
    assert "mount" in {n for rule in admin["syscalls"] for n in rule["names"]}
    # clone with the namespace-flag mask applies only without CAP_SYS_ADMIN
    assert any(r["names"] == ["clone"] and r.get("args") for r in plain["syscalls"])
    assert not any(r["names"] == ["clone"] and r.get("args") for r in admin["syscalls"])
    if goarch == "amd64":
        assert "arch_prctl" in names


def test_security_opts() -> None:
    assert security.parse_security_opts(["no-new-privileges"])["no_new_privileges"] is True
    assert security.parse_security_opts(["no-new-privileges:false"])["no_new_privileges"] is False
    assert security.parse_security_opts(["seccomp=unconfined"])["seccomp"] == "unconfined"
    custom = security.parse_security_opts(['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}'])
    assert custom["seccomp"] == {"defaultAction": "SCMP_ACT_ALLOW"}
    with pytest.raises(ConfigError, match='Invalid --security-opt: "bogus"'):
        security.parse_security_opts(["bogus"])
    with pytest.raises(ConfigError, match="decoding seccomp profile failed"):
        security.parse_security_opts(["seccomp={not json"])
