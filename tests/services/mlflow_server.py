"""A real MLflow tracking server for tests: `mlflow server` on a PostgreSQL database of its own (random
name, dropped afterwards), proxied artifacts in a temporary folder, and basic auth (`--app-name basic-auth`)
with its own user database and an admin whose password the test chooses.

The command line is the one a deployment uses, on 127.0.0.1 and a free port."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from airflow_deployment import PG_HOST, PG_PORT, PG_USER, TELEMETRY_OFF, create_database, drop_database, free_port

ADMIN = "mlflow-admin"


class MlflowServer:
    def __init__(self, root: Path, port: int, db_name: str, admin_password: str):
        self.root, self.port, self.db_name = root, port, db_name
        self.admin = (ADMIN, admin_password)
        self.url = f"http://127.0.0.1:{port}"
        self.artifacts = root / "artifacts"
        self.log_path = root / "mlflow-server.log"
        self.auth_config = root / "basic_auth.ini"
        self.proc: subprocess.Popen | None = None

    @property
    def backend_store_uri(self) -> str:
        # SQLAlchemy's plain postgresql:// picks psycopg 3, which is not installed; psycopg2 is.
        return f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.db_name}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "mlflow", "server",
                "--backend-store-uri", self.backend_store_uri,
                "--artifacts-destination", str(self.artifacts), "--serve-artifacts",
                "--app-name", "basic-auth",
                "--host", "127.0.0.1", "--port", str(self.port),
                "--allowed-hosts", f"127.0.0.1:{self.port},localhost:{self.port}",
                "--workers", "1"]

    def start(self, timeout: float = 120) -> None:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.auth_config.write_text(
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = sqlite:///{self.root / 'basic_auth.db'}\n"
            f"admin_username = {ADMIN}\n"
            f"admin_password = {self.admin[1]}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            # A training run makes hundreds of requests; without the cache each one re-hashes the password.
            "auth_cache_ttl_seconds = 60\n")
        env = {**os.environ, **TELEMETRY_OFF, "MLFLOW_AUTH_CONFIG_PATH": str(self.auth_config),
               "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16)}
        for key in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            env.pop(key, None)
        log = self.log_path.open("w")
        self.proc = subprocess.Popen(self.command(), env=env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"mlflow server not healthy after {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 20) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def api(self, method: str, path: str, auth=None, **kwargs) -> requests.Response:
        return requests.request(method, f"{self.url}/api/2.0/mlflow/{path}", auth=auth, timeout=30, **kwargs)

    def create_user(self, username: str, password: str) -> None:
        r = self.api("POST", "users/create", auth=self.admin, json={"username": username, "password": password})
        assert r.status_code == 200, r.text


@contextmanager
def mlflow_server(root: Path, admin_password: str | None = None):
    db_name = f"mlops_mlflow_{secrets.token_hex(4)}"
    create_database(db_name)
    server = MlflowServer(root, free_port(), db_name, admin_password or f"admin-{secrets.token_hex(12)}")
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            drop_database(db_name)
