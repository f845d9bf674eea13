"""The local backend's supervisor: one long-lived process that owns every model's listening socket and the
model server processes behind it.

Why a supervisor: a stable address without a traffic router. The supervisor binds each model's port once and
hands the listening socket to every server process it starts (uvicorn on an inherited fd). Processes of two
versions can listen on it side by side; the kernel gives each new connection to whichever process accepts
first, and a process that was told to stop (SIGTERM) finishes what it holds while the others take the new
connections. The socket never closes, so a client never sees a refused connection during a rollout or a
rollback.

Each server process also gets a socket of its own (a private loopback port): the supervisor's health checks
and a candidate's smoke test and bake reach that process only. A candidate listens on its private socket
alone until the rollout switches it in.

Control: a small JSON API on loopback (`control.py` is its client), guarded by a token in
`<serving dir>/supervisor.json` (mode 0600). State (ports, processes) is written to `state.json` on every
change, so a restarted supervisor binds the same ports again. A stable process that dies is restarted (at
most `MAX_RESTARTS` times in `RESTART_WINDOW_S`); a candidate that dies stays dead: that is its verdict.

    python -m mlops.serving supervise      # foreground (make serve starts it this way)
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger("mlops.serving.supervisor")

BACKLOG = 4096  # connections queue here while no process accepts (e.g. a restart): they wait, not fail
MAX_RESTARTS, RESTART_WINDOW_S = 3, 60.0
LOG_TAIL_LINES = 30
REBIND_WAIT_S = 30.0  # a model's old servers may still drain on its port after a supervisor restart
PRESTOP_S = 1.0


@dataclass
class ServerProcess:
    model: str
    version: str
    role: str  # "candidate" (private socket only) | "stable" (the model's shared socket and its own)
    model_path: str
    private: socket.socket
    env: dict[str, str]
    graceful_seconds: int
    log_path: Path
    tag: str = ""  # the rollout that started it: a rollout stops only its own processes
    popen: subprocess.Popen[bytes] | None = None
    started: float = field(default_factory=time.time)
    stopping: bool = False
    ready: bool = False  # told by the deployer once healthy: only a process that ever served is restarted
    gave_up: bool = False
    restarts: list[float] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid if self.popen is not None else -1

    id: int = 0  # the private port: unlike the pid, it stays the same when the process is restarted

    def __post_init__(self) -> None:
        self.id = int(self.private.getsockname()[1])

    def describe(self, host: str) -> dict[str, Any]:
        code = self.popen.poll() if self.popen is not None else None
        return {"id": self.id, "pid": self.pid, "version": self.version, "role": self.role, "tag": self.tag,
                "alive": code is None, "exit_code": code, "stopping": self.stopping, "ready": self.ready,
                "gave_up": self.gave_up, "private_url": f"http://{host}:{self.id}", "started": self.started,
                "log": str(self.log_path), "restarts": len(self.restarts)}


@dataclass
class ModelSlot:
    name: str
    listener: socket.socket
    processes: list[ServerProcess] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])


def serving(processes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of a model's processes (as `status()` describes them), those that serve on its shared socket: alive,
    not told to stop, not given up."""
    return [p for p in processes if p["role"] == "stable" and p["alive"] and not p["stopping"] and not p["gave_up"]]


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _listen_again(host: str, port: int, model: str) -> socket.socket:
    """The model's remembered address: clients know it, so it is worth waiting for (servers of an earlier
    supervisor drain on it for a while) and an error when it cannot be had, never a silent new port."""
    deadline = time.monotonic() + REBIND_WAIT_S
    while True:
        try:
            return _listen(host, port)
        except OSError as exc:
            if time.monotonic() > deadline:
                raise OSError(f"{model}'s address {host}:{port} is held by another process ({exc}); find it with "
                              f"`ss -ltnp 'sport = :{port}'` and stop it, or delete '{model}' from the \"ports\" of "
                              "state.json to give the model a new address") from None
            time.sleep(0.5)


class Supervisor:
    def __init__(self, root: Path, host: str = "127.0.0.1"):
        self.root, self.host = root, host
        self.models: dict[str, ModelSlot] = {}
        self.lock = threading.RLock()
        self.stopped = threading.Event()
        self.closing = False
        (root / "logs").mkdir(parents=True, exist_ok=True)
        self._known_ports = self._read_state().get("ports", {})
        # Every server gets the read end; only this process holds the write end, so its end ends them too.
        self.lifeline_read, self._lifeline_write = os.pipe()

    # --- state ------------------------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    def _read_state(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.state_path.read_text())
            return data
        except (OSError, ValueError):
            return {}

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {"pid": os.getpid(), "host": self.host, "models": {
                name: {"port": slot.port, "url": f"http://{self.host}:{slot.port}",
                       "processes": [p.describe(self.host) for p in slot.processes]}
                for name, slot in self.models.items()}}

    def _save(self) -> None:
        status = self.status()
        status["ports"] = {**self._known_ports, **{n: m["port"] for n, m in status["models"].items()}}
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(status, indent=1, sort_keys=True))
        tmp.replace(self.state_path)

    # --- processes --------------------------------------------------------------------------------------
    def _slot(self, model: str) -> ModelSlot:
        slot = self.models.get(model)
        if slot is None:
            remembered = int(self._known_ports.get(model, 0))
            listener = _listen_again(self.host, remembered, model) if remembered else _listen(self.host, 0)
            slot = self.models[model] = ModelSlot(model, listener)
            self._known_ports[model] = slot.port  # the same address after a restart of the supervisor
        return slot

    def _spawn(self, proc: ServerProcess, slot: ModelSlot) -> None:
        fds = [proc.private.fileno()]
        if proc.role == "stable":
            fds.insert(0, slot.listener.fileno())
        argv = [sys.executable, "-m", "mlops.serving.worker", "--graceful-seconds", str(proc.graceful_seconds),
                "--prestop-seconds", str(min(PRESTOP_S, proc.graceful_seconds) if proc.role == "stable" else 0),
                "--lifeline", str(self.lifeline_read)]
        for fd in fds:
            argv += ["--fd", str(fd)]
        env = {**os.environ, **proc.env, "__pyfunc_model_path__": proc.model_path,
               "MLOPS_SERVING_MODEL": proc.model, "MLOPS_SERVING_VERSION": proc.version,
               "MLOPS_SERVING_ROLE": proc.role}
        with open(proc.log_path, "ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {proc.model} v{proc.version} "
                      f"({proc.role}) on fds {fds}\n".encode())
            out.flush()
            proc.popen = subprocess.Popen(argv, pass_fds=[*fds, self.lifeline_read], env=env,
                                          stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        proc.started = time.time()

    def start(self, model: str, version: str, model_path: str, role: str, env: dict[str, str] | None = None,
              graceful_seconds: int = 30, tag: str = "") -> dict[str, Any]:
        if role not in ("candidate", "stable"):
            raise ValueError(f"role must be candidate or stable, not {role!r}")
        with self.lock:
            if self.closing:
                raise ValueError("the supervisor is shutting down; start the deploy again once it is back")
            slot = self._slot(model)
            private = _listen(self.host, 0)
            name = f"{model}-v{version}-{role}-{time.strftime('%Y%m%dT%H%M%S')}-{private.getsockname()[1]}.log"
            proc = ServerProcess(model, str(version), role, model_path, private, dict(env or {}), graceful_seconds,
                                 self.root / "logs" / name, tag)
            try:
                self._spawn(proc, slot)
            except OSError:
                private.close()
                raise
            slot.processes.append(proc)
            self._save()
            log.info("started %s v%s (%s): pid %s, private port %s", model, version, role, proc.pid, proc.id)
            return proc.describe(self.host)

    def stop(self, model: str, ids: list[int], drain_seconds: float) -> dict[str, Any]:
        """SIGTERM, then time to finish open requests (a process on the shared socket: its pre-stop phase and
        `drain_seconds`; a candidate, which only the deployer talks to: 2 s), then SIGKILL. Returns when all
        are gone."""
        with self.lock:
            slot = self.models.get(model)
            procs = [p for p in (slot.processes if slot else []) if p.id in ids]
            for p in procs:
                p.stopping = True
                if p.popen is not None and p.popen.poll() is None:
                    p.popen.send_signal(signal.SIGTERM)
        start = time.monotonic()
        for p in procs:
            assert p.popen is not None
            allowed = PRESTOP_S + drain_seconds + 1 if p.role == "stable" else 2.0
            try:
                p.popen.wait(timeout=max(0.0, start + allowed - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s v%s (pid %s) did not finish within %.0f s; killing it", p.model, p.version, p.pid,
                            allowed)
                p.popen.kill()
                p.popen.wait()
        with self.lock:
            if slot is not None:
                slot.processes = [p for p in slot.processes if p not in procs]
                for p in procs:
                    p.private.close()
            self._save()
        return {"stopped": [p.id for p in procs], "exit_codes": [p.popen.returncode for p in procs if p.popen]}

    def mark_ready(self, model: str, ids: list[int]) -> dict[str, Any]:
        with self.lock:
            slot = self.models.get(model)
            for p in slot.processes if slot else []:
                if p.id in ids:
                    p.ready = True
            self._save()
        return {"ready": ids}

    def watch(self, interval: float = 0.5) -> None:
        """Restart stable processes that died (not those told to stop); candidates are left dead."""
        while not self.stopped.wait(interval):
            with self.lock:
                changed = False
                for slot in self.models.values():
                    for p in slot.processes:
                        if p.role != "stable" or not p.ready or p.stopping or p.gave_up or p.popen is None \
                                or p.popen.poll() is None:
                            continue
                        now = time.time()
                        p.restarts = [t for t in p.restarts if now - t < RESTART_WINDOW_S]
                        if len(p.restarts) >= MAX_RESTARTS:
                            p.gave_up = True  # crash-looping: it stays dead, status shows it; a deploy replaces it
                            log.error("%s v%s exited %s times within %.0f s; not restarting it again", p.model,
                                      p.version, MAX_RESTARTS + 1, RESTART_WINDOW_S)
                            changed = True
                            continue
                        log.warning("%s v%s (pid %s) exited with %s; restarting it", p.model, p.version, p.pid,
                                    p.popen.returncode)
                        p.restarts.append(now)
                        self._spawn(p, slot)
                        changed = True
                if changed:
                    self._save()

    def shutdown(self, drain_seconds: float = 10) -> None:
        with self.lock:
            self.closing = True
        for name, slot in list(self.models.items()):
            self.stop(name, [p.id for p in slot.processes], drain_seconds)
        with self.lock:
            for slot in self.models.values():
                slot.listener.close()
            self.models.clear()
            self._save()
        self.stopped.set()


# --- the control API -----------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    server: "_ControlServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("control: " + format, *args)

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        if secrets.compare_digest(self.headers.get("X-Mlops-Token", ""), self.server.token):
            return True
        self._reply(HTTPStatus.FORBIDDEN, {"error": "missing or wrong X-Mlops-Token (see supervisor.json)"})
        return False

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self._authorised():
            self._reply(HTTPStatus.OK, self.server.supervisor.status())

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        if not self._authorised():
            return
        sup = self.server.supervisor
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if self.path == "/start":
                out = sup.start(body["model"], body["version"], body["model_path"], body["role"],
                                body.get("env"), int(body.get("graceful_seconds", 30)), str(body.get("tag", "")))
            elif self.path == "/stop":
                out = sup.stop(body["model"], [int(i) for i in body["ids"]], float(body.get("drain_seconds", 30)))
            elif self.path == "/ready":
                out = sup.mark_ready(body["model"], [int(i) for i in body["ids"]])
            elif self.path == "/shutdown":
                self._reply(HTTPStatus.OK, {"stopping": True})
                threading.Thread(target=self.server.stop_all, args=(float(body.get("drain_seconds", 10)),),
                                 daemon=True).start()
                return
            else:
                self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such command {self.path}"})
                return
        except (KeyError, ValueError, OSError) as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": f"{type(exc).__name__}: {exc}"})
            return
        self._reply(HTTPStatus.OK, out)


class _ControlServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, supervisor: Supervisor, token: str):
        super().__init__((supervisor.host if supervisor.host != "0.0.0.0" else "127.0.0.1", 0), _Handler)  # noqa: S104
        self.supervisor, self.token = supervisor, token

    def stop_all(self, drain_seconds: float) -> None:
        self.supervisor.shutdown(drain_seconds)
        self.shutdown()


def _take_pid_lock(root: Path) -> Any:
    """An exclusive lock held for the supervisor's life: a second one on the same folder exits at once."""
    import fcntl

    handle = open(root / "supervisor.lock", "a+")  # noqa: SIM115 - held open until the process ends
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = (root / "supervisor.lock").read_text().strip() or "?"
        handle.close()
        raise SystemExit(f"a supervisor already runs for {root} (pid {holder}); stop it with "
                         "`python -m mlops.serving stop` (or `kill` that pid if its supervisor.json is gone)") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def run(root: Path, host: str, ready: threading.Event | None = None,
        on_ready: Any = None) -> None:
    """Supervise until SIGTERM/SIGINT or a shutdown request; every server process is stopped on the way out.
    `on_ready(supervisor)` runs once the control API answers (make serve starts the deployed versions there)."""
    root.mkdir(parents=True, exist_ok=True)
    lock = _take_pid_lock(root)
    supervisor = Supervisor(root, host)
    token = secrets.token_hex(16)
    control = _ControlServer(supervisor, token)
    info = root / "supervisor.json"
    info.write_text("")
    info.chmod(0o600)
    info.write_text(json.dumps({"pid": os.getpid(), "control_url": f"http://127.0.0.1:{control.server_port}",
                                "token": token, "host": host, "started": time.time()}))

    def on_signal(signum: int, frame: Any) -> None:
        threading.Thread(target=control.stop_all, args=(10.0,), daemon=True).start()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # SIGHUP: the terminal of `make serve` closed
        signal.signal(signum, on_signal)
    watcher = threading.Thread(target=supervisor.watch, daemon=True)
    watcher.start()
    supervisor._save()
    if on_ready is not None:
        threading.Thread(target=on_ready, args=(supervisor,), daemon=True).start()
    if ready is not None:
        ready.set()
    try:
        control.serve_forever(poll_interval=0.2)
    finally:
        if not supervisor.stopped.is_set():
            supervisor.shutdown(10)
        info.unlink(missing_ok=True)
        lock.close()
