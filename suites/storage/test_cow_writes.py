"""Writes are copy-on-write: they land in the container's upper directory, whole files are
copied up, deletions leave whiteouts, and neither other containers of the image nor new ones
see any of it. Checked on the host: the upper and lower directories named by the overlay's
mount options, and other containers' roots through /proc/<pid>/root.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fixtures.containers import Containers
from fixtures.layers import lower_copy, make_changes, root_overlay
from fixtures.probe import SLEEP
from fixtures.targets.base import ContainerSpec


def seen_by(pid: int, path: str) -> Path:
    return Path(f"/proc/{pid}/root{path}")


@pytest.mark.req("COW-12")
@pytest.mark.needs("image-store", "exec")
def test_writes_are_invisible_to_other_containers_of_the_image(containers: Containers) -> None:
    writer = containers.start(ContainerSpec(command=SLEEP))
    before = containers.start(ContainerSpec(command=SLEEP))
    original = seen_by(before.pid, "/etc/passwd").read_text()
    changes = make_changes(containers.driver, writer)
    assert seen_by(writer.pid, changes.added).exists(), "the writer does not see its own file"
    after = containers.start(ContainerSpec(command=SLEEP))
    for other in (before, after):
        assert not seen_by(other.pid, changes.added).exists(), (
            f"{other.name} sees the file {changes.added} another container wrote"
        )
        assert seen_by(other.pid, changes.changed).read_text() == original, (
            f"{other.name} sees another container's change to {changes.changed}"
        )
        assert seen_by(other.pid, changes.deleted).exists(), (
            f"{other.name} lost {changes.deleted}, deleted in another container"
        )


@pytest.mark.req("COW-05")
@pytest.mark.needs("image-store", "exec")
def test_changed_image_file_is_copied_up_whole(containers: Containers) -> None:
    container = containers.start(ContainerSpec(command=SLEEP))
    overlay = root_overlay(container.pid)
    image_copy = lower_copy(overlay, "/etc/passwd")
    assert image_copy is not None, "/etc/passwd is in no lower layer"
    original = image_copy.read_text()
    changes = make_changes(containers.driver, container)
    upper = overlay.upperdir / changes.changed.lstrip("/")
    assert upper.is_file(), f"no copy of {changes.changed} in the upper directory"
    assert upper.read_text() == original + changes.appended, "the copy-up is not the whole file"
    assert image_copy.read_text() == original, "the image's own copy changed"
    assert (overlay.upperdir / changes.added.lstrip("/")).is_file(), (
        f"the new file {changes.added} is not in the upper directory"
    )


@pytest.mark.req("COW-06")
@pytest.mark.needs("image-store", "exec")
def test_deleted_image_file_leaves_a_whiteout(containers: Containers) -> None:
    container = containers.start(ContainerSpec(command=SLEEP))
    overlay = root_overlay(container.pid)
    changes = make_changes(containers.driver, container)
    assert not seen_by(container.pid, changes.deleted).exists(), "the deleted file is still seen"
    whiteout = overlay.upperdir / changes.deleted.lstrip("/")
    info = os.lstat(whiteout)  # FileNotFoundError: no whiteout at all
    assert stat.S_ISCHR(info.st_mode), f"{whiteout} is not a character device: {info}"
    assert (os.major(info.st_rdev), os.minor(info.st_rdev)) == (0, 0)
    assert lower_copy(overlay, changes.deleted) is not None, "the image's copy was deleted"
