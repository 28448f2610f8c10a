"""Undoing what a container owns on the host, step by step, each step tried even when an
earlier one failed (so that a retry has less to do), as dockerd's Cleanup and rm do:

  exit:   runtime state (`delete --force`, which also kills what is left), cgroup, the
          shareable /dev/shm mount, the rootfs mount, the bundle directory;
  remove: all of that, then the snapshot (upper dir) and data-root/containers/<id>.

A removal that fails leaves the container "dead" with the failures in State.Error; `rm` of a
dead container tries again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable
from typing import TYPE_CHECKING

from reference.engine.store import Container
from reference.errors import ConflictError, NotFoundError, RefError, StateError

if TYPE_CHECKING:
    from reference.engine.lifecycle import Engine
    from reference.engine.runtime import OciRuntime

Steps = tuple[tuple[str, Callable[[], object]], ...]
KILL_WAIT = 30.0


def _run(steps: Steps, errors: list[str]) -> None:
    for what, step in steps:
        try:
            step()
        except FileNotFoundError:
            pass
        except (RefError, OSError, subprocess.CalledProcessError) as e:
            errors.append(f"{what}: {e}")


def unmount_shm(engine: Engine, c: Container) -> None:
    path = engine.shm_path(c)
    if path.is_dir() and os.stat(path).st_dev != os.stat(path.parent).st_dev:
        subprocess.run(["umount", "-l", str(path)], check=True, capture_output=True)


def cleanup(engine: Engine, c: Container, rt: OciRuntime) -> list[str]:
    """After an exit (or a failed start): runtime state, cgroup, mounts, bundle."""
    from reference.cgroups.manager import new_manager

    errors: list[str] = []
    _run(
        (
            ("runtime delete", lambda: rt.delete(c.id)),
            ("cgroup", lambda: new_manager(c.cgroups_path).destroy()),
            ("shm", lambda: unmount_shm(engine, c)),
            ("rootfs", lambda: engine.snapshots.unmount(c.id)),
            ("network", lambda: errors.extend(engine.network.detach(c))),
            ("bundle", lambda: shutil.rmtree(engine.bundle(c.id), ignore_errors=True)),
        ),
        errors,
    )
    return errors


def remove(engine: Engine, c: Container, *, force: bool = False) -> None:
    with c.lock:
        if c.removed:
            raise NotFoundError(f"No such container: {c.id}")
        if c.state.status == "removing":
            raise ConflictError(f"removal of container {c.short_id} is already in progress")
        if c.state.running:
            if not force:
                raise ConflictError(
                    f"You cannot remove a running container {c.id}. Stop the container "
                    "before attempting removal or force remove"
                )
            engine.kill(c, "KILL")
            if not engine.wait_exit(c, KILL_WAIT):
                raise StateError(f"container {c.short_id} did not exit after SIGKILL")
            if engine.gone(c):  # AutoRemove got there first
                return
        c.state.status = "removing"
        errors = cleanup(engine, c, engine.runtime_for(c))
        _run(
            (
                ("snapshot", lambda: engine.snapshots.remove(c.id)),
                ("directory", lambda: shutil.rmtree(engine.containers.dir(c.id))),
            ),
            errors,
        )
        if errors:
            c.state.status = "dead"
            c.state.error = "; ".join(errors)
            with contextlib.suppress(OSError):
                engine.containers.save(c)
            raise RefError(f"unable to remove container {c.short_id}: {c.state.error}")
        c.removed = True
        engine.release_attachers(c)
        engine.containers.discard(c)
        engine.emit(c, "destroy")
        c.changed.notify_all()
