"""diff and commit capture exactly the container's changes: the engine's diff lists them, and
the layer commit adds (read from the saved image's tarball) holds them and nothing else."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from fixtures.containers import Containers
from fixtures.layers import Changes, committed_layer, make_changes
from fixtures.probe import SLEEP
from fixtures.targets.base import ContainerSpec


def parents(path: str) -> set[str]:
    """The directories above `path`, without `/` (diff and layers list changed parents)."""
    return {str(p) for p in PurePosixPath(path).parents if str(p) != "/"}


def expected_diff(changes: Changes) -> set[str]:
    touched = (changes.added, changes.changed, changes.deleted)
    return {
        f"A {changes.added}",
        f"C {changes.changed}",
        f"D {changes.deleted}",
        *(f"C {p}" for path in touched for p in parents(path)),
    }


def expected_layer(changes: Changes) -> set[str]:
    deleted = PurePosixPath(changes.deleted)
    whiteout = str(deleted.parent / f".wh.{deleted.name}")
    touched = (changes.added, changes.changed, changes.deleted)
    return {
        changes.added.lstrip("/"),
        changes.changed.lstrip("/"),
        whiteout.lstrip("/"),
        *(p.lstrip("/") for path in touched for p in parents(path)),
    }


@pytest.mark.req("COW-08")
@pytest.mark.needs("image-store", "exec")
def test_diff_lists_exactly_the_changes(containers: Containers) -> None:
    container = containers.start(ContainerSpec(command=SLEEP))
    changes = make_changes(containers.driver, container)
    found = {line.strip() for line in containers.driver.diff(container) if line.strip()}
    assert found == expected_diff(changes)


@pytest.mark.req("COW-09")
@pytest.mark.needs("image-store", "exec")
def test_commit_adds_a_layer_of_exactly_the_changes(containers: Containers, tmp_path: Path) -> None:
    container = containers.start(ContainerSpec(command=SLEEP))
    changes = make_changes(containers.driver, container)
    layer = committed_layer(containers.driver, container, tmp_path)
    assert set(layer) == expected_layer(changes)
    assert layer[changes.added.lstrip("/")].data == changes.added_text.encode()
    changed = layer[changes.changed.lstrip("/")].data
    assert changed is not None, f"{changes.changed} is not a regular file in the layer"
    assert changed.endswith(changes.appended.encode()), "the layer lacks the change's bytes"
