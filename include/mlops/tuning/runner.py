"""The warm trial runner: one long-lived process per machine and environment that has the trainer's libraries
imported, and forks a fresh child for every local trial. A trial then costs a fork instead of a Python start with
MLflow, pandas and the model's libraries imported anew (seconds per trial, the most of a small trial's time).

    python -m mlops.tuning.runner serve --socket <path> [--preload module ...] [--idle-seconds 600]
    python -m mlops.tuning.runner stop --socket <path>

The child is what `python -m mlops.train --trial-json ...` would be: it gets the request's arguments, environment
and working directory, its own session (so it can be killed as a group), and writes to a pipe the caller handed
over with the request (SCM_RIGHTS), so the caller streams the trial's log as it would a subprocess's. The
author's own module is never imported in the runner, only the third-party modules it imports: the child always
imports the author's current code. The runner exits after `idle_seconds` without a request; its socket (mode
0600, in the platform's home) is keyed by the interpreter, the import path and the platform's code, so a changed
environment gets a runner of its own.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import fcntl
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("mlops.tuning.runner")
BASE_PRELOAD = ("mlops.train", "mlops.tuning.trial", "mlops.tuning.pruning", "mlops.data", "mlops.tracking",
                "mlops.metrics", "mlops.authoring", "mlflow", "mlflow.entities", "pandas", "pyarrow.parquet",
                "numpy", "optuna",
                # MLflow imports its stores on first use (seconds for the SQL one): a trial would pay it every time.
                "mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store",
                "mlflow.store.tracking.rest_store", "mlflow.store.artifact.local_artifact_repo")
MAX_MESSAGE = 4 * 1024 * 1024  # a request carries the spec and the trial (its pruning snapshot included)


class RunnerError(RuntimeError):
    """The runner could not be reached or started."""


# --- the caller's side -----------------------------------------------------------------------------------------

def socket_path(home: Path, preload: list[str]) -> Path:
    """Where the runner for this interpreter, import path, platform code and preloaded libraries listens."""
    from mlops.trainer_run import platform_sources

    h = hashlib.sha256(sys.executable.encode())
    h.update(os.environ.get("PYTHONPATH", "").encode())
    h.update(json.dumps(sorted(preload)).encode())
    for path in platform_sources():
        h.update(path.read_bytes())
    # AF_UNIX paths are short (108 bytes): a deep home gets its sockets under the temporary folder.
    folder = home / "tuning" / "runners"
    if len(str(folder)) > 80:
        folder = _fallback_folder()
    return folder / f"{h.hexdigest()[:16]}.sock"


def preload_for(function_ref: str, trainer_packages: tuple[str, ...]) -> list[str]:
    """The third-party modules the author's module imports (anywhere in it), never the author's own code."""
    module = function_ref.partition(":")[0]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return []
    tree = ast.parse(Path(spec.origin).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    own = (*trainer_packages, module)
    return sorted(n for n in names if not any(n == p or n.startswith(p + ".") for p in own))


class Trial:
    """A trial running in a child of the runner: its pid, its output lines and its exit code."""

    def __init__(self, conn: socket.socket, out: Any, pid: int):
        self.conn, self.out, self.pid = conn, out, pid

    def lines(self) -> Iterator[str]:
        yield from self.out

    def wait(self) -> int:
        """The child's exit code; -1 when it ended without one (killed, or it crashed)."""
        reply = _recv(self.conn)
        self.conn.close()
        self.out.close()
        return int(reply["exit"]) if reply and "exit" in reply else -1

    def kill(self, grace: float = 30.0) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                os.killpg(self.pid, 0)
                time.sleep(0.2)
            os.killpg(self.pid, signal.SIGKILL)


def start_trial(sock: Path, argv: list[str], env: dict[str, str], preload: list[str],
                start_timeout: float = 60.0) -> Trial:
    """Run `python -m mlops.train <argv>` in a fork of the runner at `sock`, starting the runner if none listens."""
    conn = _connect(sock) or _start_and_connect(sock, preload, env, start_timeout)
    read_fd, write_fd = os.pipe()
    try:
        _send(conn, {"argv": argv, "env": env, "cwd": os.getcwd()}, fds=[write_fd])
    finally:
        os.close(write_fd)
    out = os.fdopen(read_fd, "r", errors="replace")
    hello = _recv(conn)
    if not hello or "pid" not in hello:
        out.close()
        conn.close()
        raise RunnerError(f"the trial runner at {sock} did not start the trial: {hello}")
    return Trial(conn, out, int(hello["pid"]))


def _connect(sock: Path) -> socket.socket | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(sock))
        return conn
    except OSError:
        conn.close()
        return None


def _start_and_connect(sock: Path, preload: list[str], env: dict[str, str], timeout: float) -> socket.socket:
    sock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = sock.with_suffix(".log")
    with open(log_path, "ab") as log_file:
        subprocess.Popen([sys.executable, "-m", "mlops.tuning.runner", "serve", "--socket", str(sock),
                          *[arg for module in preload for arg in ("--preload", module)]],
                         env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                         start_new_session=True, close_fds=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = _connect(sock)
        if conn is not None:
            return conn
        time.sleep(0.1)
    tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
    raise RunnerError(f"the trial runner did not listen at {sock} within {timeout:.0f} s. Its log:\n{tail}")


# --- the runner's side -----------------------------------------------------------------------------------------

def serve(sock: Path, preload: list[str], idle_seconds: float) -> int:
    sock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = open(sock.with_suffix(".lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log.info("another runner serves %s", sock)
        return 0
    started = time.monotonic()
    for module in (*BASE_PRELOAD, *preload):
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - a module that does not import is the child's problem, not ours
            log.warning("not preloaded: %s (%s)", module, exc)
    log.info("preloaded %d modules in %.2f s", len(BASE_PRELOAD) + len(preload), time.monotonic() - started)
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o077)
    try:
        listener.bind(str(sock))
    finally:
        os.umask(old_umask)
    listener.listen(64)
    listener.settimeout(1.0)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel; callers get exit codes
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    last = time.monotonic()
    try:
        while not stop["now"] and time.monotonic() - last < idle_seconds:
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            last = time.monotonic()
            if not _handle(conn, listener):
                break
    finally:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
    log.info("stopping (idle for %.0f s, asked to, or SIGTERM)", idle_seconds)
    return 0


def _handle(conn: socket.socket, listener: socket.socket) -> bool:
    """Serve one request; False when it asks the runner to stop."""
    conn.settimeout(10.0)  # a caller that connects and says nothing must not hold the runner
    try:
        request, fds = _recv_with_fds(conn)
    except (OSError, ValueError):
        conn.close()
        return True
    if request is None or request.get("stop"):
        conn.close()
        return request is None
    pid = os.fork()
    if pid == 0:  # the trial
        listener.close()
        _run_child(conn, request, fds)
    conn.close()
    for fd in fds:
        os.close(fd)
    return True


def _run_child(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    code = 70
    try:
        conn.settimeout(None)
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request.get("cwd") or "/")
        for fd in (1, 2):
            os.dup2(fds[0], fd)
        os.close(fds[0])
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        logging.root.handlers.clear()
        _send(conn, {"pid": os.getpid()})
        from mlops import train

        code = train._main(list(request["argv"]))
    except SystemExit as exc:
        code = int(exc.code) if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - whatever happens, the caller gets an exit code
        import traceback

        traceback.print_exc()
        code = 70
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
            _send(conn, {"exit": code})
        os._exit(code)


# --- framing: a 4-byte length, then JSON; file descriptors ride on the first message --------------------------

def _send(conn: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    body = json.dumps(message).encode()
    frame = struct.pack("!I", len(body)) + body
    if fds:
        socket.send_fds(conn, [frame[:4]], fds)
        conn.sendall(frame[4:])
    else:
        conn.sendall(frame)


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = conn.recv(size - got)
        if not chunk:
            raise ValueError("the connection closed mid-message")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _recv(conn: socket.socket) -> dict[str, Any] | None:
    try:
        head = conn.recv(4, socket.MSG_WAITALL)
        if len(head) < 4:
            return None
        (size,) = struct.unpack("!I", head)
        return dict(json.loads(_recv_exact(conn, size)))
    except (OSError, ValueError):
        return None


def _recv_with_fds(conn: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    head, fds, _, _ = socket.recv_fds(conn, 4, 4)
    if len(head) < 4:
        return None, list(fds)
    (size,) = struct.unpack("!I", head)
    if size > MAX_MESSAGE:
        raise ValueError(f"a request of {size} bytes is larger than {MAX_MESSAGE}")
    return dict(json.loads(_recv_exact(conn, size))), list(fds)


def stop_all(folders: list[Path]) -> int:
    """Ask every runner listening in `folders` to exit (trials under way finish: they are not its children any
    more than a caller's); the next trial starts a new one. Returns how many were asked."""
    asked = 0
    for folder in folders:
        for sock in folder.glob("*.sock"):
            asked += stop(sock)
    return asked


def runner_folders(home: Path) -> list[Path]:
    """Where runners for this home may listen."""
    return [home / "tuning" / "runners", _fallback_folder()]


def _fallback_folder() -> Path:
    return Path(os.environ.get("TMPDIR", "/tmp")) / f"mlops-runners-{os.getuid()}"


def stop(sock: Path) -> bool:
    conn = _connect(sock)
    if conn is None:
        return False
    with conn:
        _send(conn, {"stop": True})
    return True


def _main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m mlops.tuning.runner", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="preload and serve trials until idle")
    s.add_argument("--socket", type=Path, required=True)
    s.add_argument("--preload", action="append", default=[])
    s.add_argument("--idle-seconds", type=float, default=600.0)
    t = sub.add_parser("stop", help="ask the runner at --socket (default: every runner of this home) to exit")
    t.add_argument("--socket", type=Path)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if a.command == "serve":
        return serve(a.socket, a.preload, a.idle_seconds)
    if a.socket is not None:
        return 0 if stop(a.socket) else 1
    from mlops.settings import get_settings

    print(f"asked {stop_all(runner_folders(get_settings().home))} runner(s) to exit")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
