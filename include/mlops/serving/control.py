"""The client of the local supervisor: find it (start it when none runs), ask it to start and stop server
processes, read its status. Deploy tasks, `python -m mlops.serving` and the tests talk to it through here."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

START_TIMEOUT_S = 30.0
# What the supervisor (and so every model server) gets of the environment of the task that starts it: enough
# to run Python and find the model's code, with telemetry off. Not the task's credentials: a server reads a
# local copy of the model and talks to no store.
SUPERVISOR_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "CUDA_VISIBLE_DEVICES",
                  "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "SCARF_ANALYTICS", "GX_ANALYTICS_ENABLED")


class SupervisorError(RuntimeError):
    """The supervisor is not there or refused a request."""


def _info(root: Path) -> dict[str, Any] | None:
    """What supervisor.json says, if the supervisor it names runs. Its lock says so, not its pid: after a
    crash the pid may belong to another process by now."""
    try:
        data: dict[str, Any] = json.loads((root / "supervisor.json").read_text())
    except (OSError, ValueError):
        return None
    if not data.get("pid") or not _locked(root) or not _alive(int(data["pid"])):
        return None
    return data


def _locked(root: Path) -> bool:
    """Whether a supervisor holds the folder's lock (it holds it exclusively for its whole life)."""
    try:
        handle = open(root / "supervisor.lock")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def _alive(pid: int) -> bool:
    """Whether the process runs: a zombie (a supervisor that exited but that this process started and has not
    reaped yet) counts as gone, and is reaped."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child: its parent reaps it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class Supervisor:
    """A handle on a running supervisor."""

    def __init__(self, root: Path, info: dict[str, Any]):
        self.root, self.info = root, info
        self.pid = int(info["pid"])
        self.url, self.token, self.host = info["control_url"], info["token"], info.get("host", "127.0.0.1")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 60) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"X-Mlops-Token": self.token, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback URL
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise SupervisorError(f"the serving supervisor (pid {self.pid}) refused {path}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise SupervisorError(f"the serving supervisor (pid {self.pid}, {self.url}) did not answer {path}: "
                                  f"{exc}; its log is {self.root / 'supervisor.log'} (or the terminal of "
                                  "`make serve`)") from None

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", "/status", timeout=10)
        return out

    def model(self, model: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.status()["models"].get(model)
        return found

    def start(self, model: str, version: str, model_path: str, role: str, env: dict[str, str] | None = None,
              graceful_seconds: int = 30, tag: str = "") -> dict[str, Any]:
        out: dict[str, Any] = self._call("POST", "/start", {
            "model": model, "version": str(version), "model_path": model_path, "role": role, "env": env or {},
            "graceful_seconds": graceful_seconds, "tag": tag})
        return out

    def stop(self, model: str, ids: list[int], drain_seconds: float) -> dict[str, Any]:
        """Stop the processes `ids` (their `id`, which survives a restart; not the pid)."""
        if not ids:
            return {"stopped": []}
        out: dict[str, Any] = self._call("POST", "/stop", {"model": model, "ids": ids,
                                                            "drain_seconds": drain_seconds},
                                         timeout=drain_seconds + 60)
        return out

    def mark_ready(self, model: str, ids: list[int]) -> None:
        """The processes passed their health check: from now on the supervisor restarts them if they die."""
        self._call("POST", "/ready", {"model": model, "ids": ids}, timeout=10)

    def shutdown(self, drain_seconds: float = 10, wait_s: float = 60) -> None:
        """Stop every server process and the supervisor; returns once its process is gone."""
        try:
            self._call("POST", "/shutdown", {"drain_seconds": drain_seconds}, timeout=10)
        except SupervisorError:
            if not _alive(self.pid):
                return
            raise
        deadline = time.monotonic() + wait_s
        while _alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(self.pid):
            raise SupervisorError(f"the serving supervisor (pid {self.pid}) is still running {wait_s:.0f} s after "
                                  f"the shutdown request; its log: {self.root / 'supervisor.log'}; `kill {self.pid}` "
                                  "ends it (its servers drain and exit with it)")


def find(root: Path) -> Supervisor | None:
    info = _info(root)
    return Supervisor(root, info) if info is not None else None


@contextmanager
def _start_lock(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "start.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure(root: Path, host: str) -> Supervisor:
    """The running supervisor, or a new one started in the background (its own session, so it outlives the
    task that started it; stopped by `python -m mlops.serving stop`)."""
    found = find(root)
    if found is not None:
        return found
    with _start_lock(root):  # two deploys starting at once start one supervisor
        found = find(root)
        if found is not None:
            return found
        with open(root / "supervisor.log", "ab") as out:
            env = {k: os.environ[k] for k in SUPERVISOR_ENV if k in os.environ}
            proc = subprocess.Popen(
                [sys.executable, "-m", "mlops.serving", "supervise", "--dir", str(root), "--host", host],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env={**env, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"})
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            info = _info(root)
            if info is not None and int(info["pid"]) == proc.pid:
                return Supervisor(root, info)
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        tail = (root / "supervisor.log").read_text(errors="replace").splitlines()[-15:]
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            why = f"did not start within {START_TIMEOUT_S:.0f} s"
        else:
            why = f"exited at once with code {proc.returncode}"
        raise SupervisorError(f"the serving supervisor {why}; the end of its log ({root / 'supervisor.log'}):\n"
                              + "\n".join(tail))


def stop(root: Path) -> bool:
    """Stop the supervisor (and so every local server) if one runs; True when one did."""
    found = find(root)
    if found is None:
        return False
    found.shutdown()
    return True
