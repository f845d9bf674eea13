"""`pods/{name}/exec`: run the requested command as a local process and stream it over the WebSocket.

The command runs on the host, in the pod's sandbox folder with the container's environment, and with
`/airflow/xcom` rewritten into the sandbox, so the provider's `cat /airflow/xcom/return.json` in the
XCom sidecar reads what the main container wrote. Commands that `kill` are never run on the host (the
provider's sidecar kill, `kill -2 $(pgrep -u $(id -u) -f 'sh')`, would hit the test runner's own
shells): in the sidecar they stop the sidecar instead, anywhere else they fail with exit code 1.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
from typing import Callable

from . import websocket as ws
from .runtime import Sandbox, exit_code

_KILL = re.compile(r"(^|[\s;&|(`$])kill\s")
_SHELLS = {"sh", "bash", "ash", "dash", "/bin/sh", "/bin/bash", "/bin/ash", "/bin/dash", "/usr/bin/bash"}


def is_kill(text: str) -> bool:
    return bool(_KILL.search(text))


def status_message(code: int, argv: list[str]) -> bytes:
    """The Status the API server sends on channel 3 when the command ends."""
    if code == 0:
        return json.dumps({"metadata": {}, "status": "Success"}).encode()
    return json.dumps({
        "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
        "message": f"command terminated with non-zero exit code: error executing command {argv}, exit code {code}",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }).encode()


class ExecSession:
    """One exec: `on_kill` stops the target container when a kill command arrives (None: refuse)."""

    def __init__(self, conn: ws.Connection, argv: list[str], *, env: dict[str, str], sandbox: Sandbox,
                 stdin: bool, on_kill: Callable[[], None] | None):
        self.conn, self.argv, self.env, self.sandbox = conn, argv, env, sandbox
        self.stdin, self.on_kill = stdin, on_kill
        self.proc: subprocess.Popen | None = None
        self._pending = ""

    def run(self) -> int:
        script = self.argv[2] if len(self.argv) >= 3 and self.argv[0] in _SHELLS and self.argv[1] == "-c" else None
        if script is not None and is_kill(script):
            return self._finish(self._kill())
        try:
            self.proc = subprocess.Popen(
                [self.sandbox.rewrite(a) for a in self.argv], env=self.env, cwd=self.sandbox.root,
                stdin=subprocess.PIPE if self.stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            self.conn.send_channel(ws.STDERR, f"exec: {exc}\n".encode())
            return self._finish(126)
        pumps = [threading.Thread(target=self._pump, args=(stream, channel), daemon=True)
                 for stream, channel in ((self.proc.stdout, ws.STDOUT), (self.proc.stderr, ws.STDERR))]
        for pump in pumps:
            pump.start()
        threading.Thread(target=self._read_client, daemon=True).start()
        code = exit_code(self.proc.wait())
        for pump in pumps:
            pump.join(timeout=5)
        return self._finish(code)

    def _finish(self, code: int) -> int:
        self.conn.send_channel(ws.ERROR, status_message(code, self.argv))
        self.conn.close()
        return code

    def _kill(self) -> int:
        if self.on_kill is None:
            self.conn.send_channel(ws.STDERR, b"kill: not emulated outside the xcom sidecar\n")
            return 1
        self.on_kill()
        return 0

    def _pump(self, stream, channel: int) -> None:
        for chunk in iter(lambda: os.read(stream.fileno(), 65536), b""):
            if not self.conn.send_channel(channel, chunk):
                break
        stream.close()

    def _read_client(self) -> None:
        """Feed stdin line by line (so kill commands can be intercepted) until the client closes."""
        while True:
            opcode, payload = self.conn.receive()
            if opcode == ws.OP_CLOSE:
                self.terminate()
                return
            if payload and payload[0] == ws.STDIN and self.stdin:
                self._pending += payload[1:].decode("utf-8", "replace")
                while "\n" in self._pending:
                    line, self._pending = self._pending.split("\n", 1)
                    self._feed(line + "\n")

    def _feed(self, line: str) -> None:
        if is_kill(line):
            if self._kill() == 0:  # the shell the sidecar ran is gone with it
                self._close_stdin()
            return
        try:
            self.proc.stdin.write(self.sandbox.rewrite(line).encode())
            self.proc.stdin.flush()
        except (OSError, ValueError):
            pass

    def _close_stdin(self) -> None:
        try:
            self.proc.stdin.close()
        except (OSError, ValueError, AttributeError):
            pass

    def terminate(self) -> None:
        self._close_stdin()
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
