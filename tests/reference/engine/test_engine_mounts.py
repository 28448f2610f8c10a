"""-v and --mount parsing, with moby's wording."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference.engine.mounts import parse
from reference.errors import ConfigError


def test_bind_defaults_to_rprivate_and_rw(tmp_path: Path) -> None:
    (mount,) = parse({"Mounts": [{"Type": "bind", "Source": str(tmp_path), "Target": "/data"}]})
    assert (mount["Propagation"], mount["RW"], mount["Destination"]) == ("rprivate", True, "/data")


def test_bind_options(tmp_path: Path) -> None:
    spec = {
        "Type": "bind",
        "Source": str(tmp_path),
        "Target": "/d/",
        "ReadOnly": True,
        "BindOptions": {"Propagation": "rshared"},
    }
    (mount,) = parse({"Mounts": [spec]})
    assert (mount["Propagation"], mount["RW"], mount["Destination"]) == ("rshared", False, "/d")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"Type": "bind", "Source": "/nonexistent-cts", "Target": "/x"},
            "bind source path does not exist: /nonexistent-cts",
        ),
        (
            {"Type": "bind", "Source": "/tmp", "Target": "rel"},
            "invalid mount path: 'rel' mount path must be absolute",
        ),
        ({"Type": "bind", "Source": "", "Target": "/x"}, "field Source must not be empty"),
        (
            {
                "Type": "bind",
                "Source": "/tmp",
                "Target": "/x",
                "BindOptions": {"Propagation": "odd"},
            },
            "invalid propagation mode: odd",
        ),
        ({"Type": "volume", "Source": "v", "Target": "/x"}, "named volumes are not supported"),
        ({"Type": "npipe", "Target": "/x"}, "mount type unknown"),
    ],
)
def test_refused_mounts(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse({"Mounts": [spec]})


def test_volume_flag_makes_a_missing_source(tmp_path: Path) -> None:
    source = tmp_path / "made" / "here"
    (mount,) = parse({"Binds": [f"{source}:/data:ro,rslave"]})
    assert source.is_dir()
    assert (mount["RW"], mount["Propagation"], mount["Mode"]) == (False, "rslave", "ro,rslave")


def test_duplicate_targets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Duplicate mount point: /data"):
        parse({"Binds": [f"{tmp_path}:/data", f"{tmp_path}:/data/"]})


@pytest.mark.parametrize("spec", ["/only", ":/x", "a:b:c:d"])
def test_bad_volume_specs(spec: str) -> None:
    with pytest.raises(ConfigError, match="invalid volume specification"):
        parse({"Binds": [spec]})
