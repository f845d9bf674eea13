"""Airflow's real API server as a subprocess over the test session's metadata DB, with one simple-auth
user, so code under test can talk to Airflow's REST API the way a deployed task does."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

USER, PASSWORD = "mlops-maintenance", "maintenance-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def airflow_api_server(workdir: Path, role: str = "op", timeout: float = 120,
                       users: dict[str, tuple[str, str]] | None = None, env: dict[str, str] | None = None):
    """Yields the base URL; the server is stopped (its whole process group) on exit.

    `users` (name -> (role, password)) replaces the one maintenance user; `env` adds to the server's
    environment (e.g. another auth manager)."""
    workdir.mkdir(parents=True, exist_ok=True)
    users = users or {USER: (role, PASSWORD)}
    passwords = workdir / "passwords.json"
    passwords.write_text(json.dumps({name: password for name, (_, password) in users.items()}))
    port = free_port()
    env = {**os.environ,
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{name}:{r}" for name, (r, _) in users.items()),
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords), **(env or {})}
    log = (workdir / "api-server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "airflow", "api-server", "--port", str(port), "--workers", "1"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                if requests.get(f"{url}/api/v2/monitor/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the API server did not start:\n{(workdir / 'api-server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def connection_json(url: str) -> str:
    return json.dumps({"conn_type": "http", "host": url, "login": USER, "password": PASSWORD})
