"""The suite's remote plugin (fixtures/remote_plugin.py) as a process of its own, for tests
that run it in a network namespace apart (`unshare --net`), as a real plugin is a process
apart: its veths are made there, and go with the namespace when the process ends.

    python -m tests.reference.network._plugin_proc <socket dir> <calls file>

prints the plugin's name once it listens, appends every call to <calls file> as a JSON line
before answering it, and stops on SIGTERM.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from fixtures.remote_plugin import RemoteNetworkPlugin, _Server
from fixtures.session import unique_name


class RecordingPlugin(RemoteNetworkPlugin):
    def __init__(self, name: str, socket: Path, log: Path) -> None:
        super().__init__(name, socket)
        self.log = log

    def handle(self, method: str, body: dict[str, Any] | None) -> dict[str, Any] | None:
        with self.log.open("a") as out:
            out.write(json.dumps({"method": method, "body": body}) + "\n")
        return super().handle(method, body)


def main(directory: Path, log: Path) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    name = unique_name("plugin")
    plugin = RecordingPlugin(name, directory / f"{name}.sock", log)
    server = _Server(plugin)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    print(name, flush=True)
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        plugin.socket.unlink(missing_ok=True)
        plugin.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
