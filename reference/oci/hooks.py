"""OCI hooks (config.md "POSIX-platform Hooks"): run a stage's hooks with the state on stdin.

Each hook is {path, args, env, timeout}; `args[0]` is argv[0] as in execve (the path is what
runs). A hook that fails or outlives its timeout is an error naming the stage and the path;
for poststart and poststop the spec says to warn and go on, which the caller chooses.
Hooks are kept as raw JSON dicts: that is how they are stored in the container's state, so
`start` and `delete` need not load the spec machinery to run them.
"""

from __future__ import annotations

import os

from reference.errors import RefError
from reference.oci import fastjson

# Spec stage names, in lifecycle order, with the JSON key of each.
STAGES = (
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
)


def run_hooks(stage: str, hooks: list[dict[str, object]], state: dict[str, object]) -> None:
    """Run `hooks` in order; the first failure raises RefError (obj = the hook's path)."""
    if not hooks:
        return
    import subprocess

    data = fastjson.dumps(state).encode()
    for i, hook in enumerate(hooks):
        path = str(hook.get("path", ""))
        argv = [str(a) for a in hook.get("args") or []] or [path]  # type: ignore[attr-defined]
        env = [str(e) for e in hook.get("env") or []]  # type: ignore[attr-defined]
        timeout = hook.get("timeout")
        where = f"hooks.{stage}[{i}]"
        try:
            done = subprocess.run(
                argv,
                executable=path,
                input=data,
                env=dict(e.split("=", 1) for e in env if "=" in e),
                capture_output=True,
                timeout=timeout if isinstance(timeout, int) and timeout > 0 else None,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RefError(f"{where} timed out after {timeout}s", obj=path) from None
        except OSError as e:
            raise RefError(f"{where} cannot run ({os.strerror(e.errno or 0)})", obj=path) from None
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).decode(errors="replace").strip()
            how = (
                f"was killed by signal {-done.returncode}"
                if done.returncode < 0
                else f"exited with status {done.returncode}"
            )
            raise RefError(f"{where} {how}" + (f" ({detail})" if detail else ""), obj=path)


def hook_state(
    oci_version: str,
    cid: str,
    status: str,
    pid: int,
    bundle: str,
    annotations: dict[str, str],
) -> dict[str, object]:
    """The state object hooks get on stdin (runtime.md "State")."""
    state: dict[str, object] = {
        "ociVersion": oci_version,
        "id": cid,
        "status": status,
        "pid": pid,
        "bundle": bundle,
    }
    if annotations:
        state["annotations"] = annotations
    return state
