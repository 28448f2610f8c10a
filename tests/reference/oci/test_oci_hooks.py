"""reference.oci.hooks: the hook runner behaves as the subprocess.run call it replaces."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reference.errors import RefError
from reference.oci import hooks

CASES = [
    (["sh", "-c", "cat; echo err >&2; exit 3"], {}),
    (["sh", "-c", "env | sort"], {"A": "b", "PATH": "/bin"}),
    (["sh", "-c", "ls /proc/self/fd | wc -l"], {}),  # only stdio (+ ls's own directory)
    (["sh", "-c", "kill -TERM $$"], {}),
    (["sh", "-c", "exec 0<&-; echo closed"], {}),  # stdin closed before reading it
    (["sh", "-c", "trap - PIPE; yes | head -c 3"], {}),  # SIGPIPE at its default again
]


@pytest.mark.parametrize(("argv", "env"), CASES)
def test_spawn_matches_subprocess_run(argv: list[str], env: dict[str, str]) -> None:
    data = b'{"id": "c"}' * 10000  # more than a pipe holds
    done = subprocess.run(
        argv, executable="/bin/sh", input=data, env=env, capture_output=True, timeout=10
    )
    assert hooks.spawn("/bin/sh", argv, env, data, 10) == (
        done.returncode,
        done.stdout,
        done.stderr,
    )


def test_spawn_timeout_kills_and_missing_program_is_oserror() -> None:
    with pytest.raises(TimeoutError):
        hooks.spawn("/bin/sleep", ["sleep", "10"], {}, b"{}", 0.2)
    with pytest.raises(FileNotFoundError):
        hooks.spawn("/nonexistent/hook", ["hook"], {}, b"{}", None)


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        ({"path": "/bin/sh", "args": ["sh", "-c", "echo why >&2; exit 2"]},
         "hooks.prestart[0] exited with status 2 (why)"),
        ({"path": "/nonexistent"}, "hooks.prestart[0] cannot run (No such file or directory)"),
        ({"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1},
         "hooks.prestart[0] timed out after 1s"),
        ({"path": "/bin/sh", "args": ["sh", "-c", "kill -KILL $$"]},
         "hooks.prestart[0] was killed by signal 9"),
    ],
)  # fmt: skip
def test_run_hooks_errors_name_the_hook(hook: dict[str, object], message: str) -> None:
    with pytest.raises(RefError) as e:
        hooks.run_hooks("prestart", [hook], {"id": "c"})
    assert str(e.value).startswith(message)
    assert e.value.obj == hook["path"]


def test_run_hooks_feeds_the_state_on_stdin(tmp_path: Path) -> None:
    out = f"{tmp_path}/state.json"
    hooks.run_hooks(
        "poststart",
        [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {out}"], "env": ["X=1"]}],
        {"id": "c", "status": "running"},
    )
    with open(out) as f:
        assert f.read() == '{"id":"c","status":"running"}'
