"""A real Airflow deployment for tests: `airflow api-server`, `scheduler`, `dag-processor` and `triggerer`
as subprocesses (each in its own process group) over a PostgreSQL metadata DB of their own, with the
LocalExecutor, simple auth, and the platform's DAGs and plugin from this repository.

Nothing here touches Airflow in-process: the test process talks to the deployment through the REST API
(`ApiClient`) the way the UI does, and to Postgres (psycopg2) only to create and drop the database.
Every component writes its log to a file under the deployment's folder; `log_tails()` shows them.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
# The PostgreSQL server the test databases are made on (trust auth for this user).
PG_HOST = os.environ.get("MLOPS_TEST_PGHOST", "127.0.0.1")
PG_PORT = int(os.environ.get("MLOPS_TEST_PGPORT", "5432"))
PG_USER = os.environ.get("MLOPS_TEST_PGUSER", "postgres")
USER, PASSWORD = "mlops-services-admin", "services-password"
# The people of the approval tests: user name -> (simple auth manager role, password).
PEOPLE = {"mlops-approver": ("user", "approver-password"), "mlops-reviewer": ("op", "reviewer-password"),
          "mlops-intruder": ("user", "intruder-password")}
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
# Stopped in this order: no new work first, the API server (which workers report to) last.
STOP_ORDER = ("scheduler", "triggerer", "dag-processor", "api-server")
TELEMETRY_OFF = {
    "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
    "SCARF_ANALYTICS": "false",
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "false",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require(what: str, problems: list[str | None]) -> None:
    """The services suites' rule for missing services: fail under CI=true (CI must run them), skip elsewhere."""
    import pytest

    found = "; ".join(p for p in problems if p)
    if not found:
        return
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{what} and CI=true: {found}", pytrace=False)
    pytest.skip(f"{what}: {found}")


# -- PostgreSQL --------------------------------------------------------------------------------------------
def postgres_problem() -> str | None:
    """Why a test database cannot be made here, or None when it can."""
    try:
        import psycopg2
    except ImportError as exc:
        return f"psycopg2 is not installed ({exc}); install requirements.txt"
    try:
        psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=3).close()
    except psycopg2.Error as exc:
        return f"PostgreSQL is not reachable at {PG_USER}@{PG_HOST}:{PG_PORT} ({str(exc).strip()})"
    return None


def _admin():
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=5)
    conn.autocommit = True
    return conn


def create_database(name: str) -> str:
    conn = _admin()  # not `with conn`: that would open a transaction, and CREATE DATABASE refuses one
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    return f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def drop_database(name: str) -> None:
    """Ends leftover connections first (a dead component's pool must not keep the database alive)."""
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                        "AND pid <> pg_backend_pid()", (name,))
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        conn.close()


def database_exists(name: str) -> bool:
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            return cur.fetchone() is not None
    finally:
        conn.close()


# -- REST API ----------------------------------------------------------------------------------------------
class ApiError(AssertionError):
    pass


class ApiClient:
    """REST API v2 with a bearer token, as the UI uses it."""

    def __init__(self, url: str, token: str | None):
        self.url, self.token = url, token
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, expect: tuple[int, ...] = (200, 201, 204), **kwargs):
        response = self.session.request(method, f"{self.url}{path}", timeout=30, **kwargs)
        if response.status_code not in expect:
            raise ApiError(f"{method} {path} -> {response.status_code}: {response.text[:2000]}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, json=body, **kw)

    def patch(self, path, body, **kw):
        return self.request("PATCH", path, json=body, **kw)

    # Shortcuts for what the tests do often.
    def unpause(self, dag_id: str) -> None:
        assert self.patch(f"/api/v2/dags/{dag_id}", {"is_paused": False})["is_paused"] is False

    def trigger(self, dag_id: str, logical_date: str | None, conf: dict | None = None) -> str:
        body = {"logical_date": logical_date, "conf": conf or {}}
        return self.post(f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"]

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        tis = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti["state"] for ti in tis}

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        body = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
                        params={"full_content": "true"}, expect=(200, 404))
        if not isinstance(body, dict):
            return str(body)
        content = body.get("content")
        if isinstance(content, list):
            return "\n".join(line.get("event", json.dumps(line)) if isinstance(line, dict) else str(line)
                             for line in content)
        return str(content)

    def failure_report(self, dag_id: str, run_id: str, tail: int = 3000) -> str:
        """Task states and the end of each unsuccessful task's log, for assertion messages."""
        try:
            tis = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        except ApiError as exc:
            return str(exc)
        lines = [f"{dag_id} {run_id}: " + ", ".join(f"{t['task_id']}={t['state']}" for t in tis)]
        for ti in tis:
            if ti["state"] not in ("success", "skipped"):
                try:
                    log = self.task_log(dag_id, run_id, ti["task_id"], max(1, ti.get("try_number") or 1))
                except ApiError as exc:
                    log = str(exc)
                lines.append(f"--- {ti['task_id']} (try {ti.get('try_number')}) log tail:\n{log[-tail:]}")
        return "\n".join(lines)


# Lines a test wants in the suite's summary (e.g. what a backfill promoted), printed by conftest.py.
REPORT: list[str] = []


# -- The deployment ----------------------------------------------------------------------------------------
@dataclass
class Deployment:
    root: Path  # everything of this deployment lives under here
    db_name: str
    port: int
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    jwt_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    stopped: dict[str, str] | None = None  # component -> "terminated" | "killed", once stopped
    cluster: object = None  # the emulated Kubernetes cluster its kubernetes connection points at

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def mlops_home(self) -> Path:
        return self.root / "platform"

    @property
    def data_root(self) -> Path:
        return self.root / "data"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def logs_dir(self) -> Path:
        return self.root / "component-logs"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.mlops_home / 'mlflow' / 'mlflow.db'}"

    @property
    def audit_root(self) -> Path:
        return self.mlops_home / "audit"

    @property
    def sql_alchemy_conn(self) -> str:
        return f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.db_name}"

    def env(self) -> dict[str, str]:
        """The components' whole configuration, explicit: nothing of the test process's Airflow or
        platform settings (conftest.py points those at a SQLite DB) leaks in."""
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("AIRFLOW", "MLOPS_", "MLFLOW_", "_AIRFLOW", "PYTEST", "KUBECONFIG"))}
        passwords = self.root / "passwords.json"
        return {
            **base,
            **TELEMETRY_OFF,
            "PYTHONUNBUFFERED": "1",
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.airflow_home / "plugins"),  # empty: the plugin is installed
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
                [f"{USER}:admin", *(f"{name}:{role}" for name, (role, _) in PEOPLE.items())]),
            # Approvals by role (promotion.approval.roles) need the platform's role-aware auth manager.
            "AIRFLOW__CORE__AUTH_MANAGER": "mlops_airflow.auth.RoleAwareSimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": self.jwt_secret[:32],
            "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "300",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "MLOPS_PROJECT_ROOT": str(ROOT),
            "MLOPS_HOME": str(self.mlops_home),
            "MLOPS_DATA_ROOT": str(self.data_root),
            "MLOPS_MODELS_DIR": str(self.models_dir),
            "MLOPS_GIT_SHA": "services-test",
            **self.extra_env,
        }

    # -- lifecycle ---------------------------------------------------------------------------------------
    def _cli(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run([sys.executable, *args], env=self.env(), cwd=self.root, capture_output=True,
                                text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n"
                               f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
        return result.stdout

    def prepare(self) -> None:
        """The metadata DB schema and the Airflow pools named in the compute catalogue (deploy steps)."""
        for folder in (self.airflow_home, self.mlops_home, self.logs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        (self.root / "passwords.json").write_text(json.dumps(
            {USER: PASSWORD, **{name: password for name, (_, password) in PEOPLE.items()}}))
        started = time.perf_counter()
        self._cli("-m", "airflow", "db", "migrate")
        self.timings["db migrate"] = time.perf_counter() - started
        started = time.perf_counter()
        self._cli("-m", "mlops_airflow.pools", "sync")
        self.timings["pools sync"] = time.perf_counter() - started

    def start(self) -> None:
        env = self.env()
        for name in COMPONENTS:
            args = [sys.executable, "-m", "airflow", name]
            if name == "api-server":
                args += ["--port", str(self.port), "--host", "127.0.0.1", "--workers", "1"]
            log = (self.logs_dir / f"{name}.log").open("ab")
            # Its own session: SIGTERM reaches the component and everything it started (executor workers,
            # task supervisors, training subprocesses) and nothing else.
            self.processes[name] = subprocess.Popen(args, env=env, cwd=self.root, stdout=log,
                                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                    start_new_session=True)
            log.close()

    def wait_until_ready(self, dag_ids: list[str], timeout: float = 240) -> None:
        """API healthy, every component heartbeating, and the DAGs parsed and serialized."""
        started = time.perf_counter()
        deadline = time.time() + timeout
        problem = "not started"
        api = None
        while time.time() < deadline:
            dead = {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}
            if dead:
                raise RuntimeError(f"component(s) exited during start-up: {dead}\n{self.log_tails()}")
            try:
                health = requests.get(f"{self.url}/api/v2/monitor/health", timeout=3).json()
                unhealthy = [k for k in ("metadatabase", "scheduler", "triggerer", "dag_processor")
                             if (health.get(k) or {}).get("status") != "healthy"]
                if unhealthy:
                    problem = f"unhealthy: {unhealthy}: {health}"
                else:
                    api = api or self.client()
                    known = {d["dag_id"] for d in api.get("/api/v2/dags", params={"limit": 200})["dags"]}
                    errors = api.get("/api/v2/importErrors")
                    if errors["total_entries"]:
                        raise RuntimeError(f"DAG import errors: {errors}")
                    missing = sorted(set(dag_ids) - known)
                    if not missing:
                        self.timings["components ready"] = time.perf_counter() - started
                        return
                    problem = f"DAGs not parsed yet: {missing}"
            except requests.RequestException as exc:
                problem = f"API server not answering: {exc}"
            time.sleep(1)
        raise RuntimeError(f"the deployment was not ready after {timeout}s ({problem})\n{self.log_tails()}")

    def token(self) -> str:
        response = requests.post(f"{self.url}/auth/token", json={"username": USER, "password": PASSWORD}, timeout=30)
        assert response.status_code == 201, response.text
        return response.json()["access_token"]

    def client(self) -> ApiClient:
        return ApiClient(self.url, self.token())

    def client_as(self, user: str) -> ApiClient:
        """The REST API as one of PEOPLE."""
        response = requests.post(f"{self.url}/auth/token", json={"username": user, "password": PEOPLE[user][1]},
                                 timeout=30)
        assert response.status_code == 201, response.text
        return ApiClient(self.url, response.json()["access_token"])

    def stop(self, timeout: float = 60) -> dict[str, str]:
        """Each component in STOP_ORDER: SIGTERM, wait; SIGKILL only after `timeout` (see _stop_group).
        Returns how each one ended ("terminated" when nothing more was needed). Idempotent."""
        if self.stopped is not None:
            return self.stopped
        outcome = {}
        started = time.perf_counter()
        for name in STOP_ORDER:
            proc = self.processes.get(name)
            if proc is None:
                continue
            outcome[name] = _stop_group(proc, timeout)
        self.stopped = outcome
        self.timings["stop"] = time.perf_counter() - started
        return outcome

    # -- diagnostics --------------------------------------------------------------------------------------
    def log_tails(self, chars: int = 4000) -> str:
        out = []
        for path in sorted(self.logs_dir.glob("*.log")):
            text = path.read_text(errors="replace")
            out.append(f"===== {path.name} (last {min(chars, len(text))} of {len(text)} chars) =====\n{text[-chars:]}")
        return "\n".join(out)

    def leftover_processes(self) -> list[str]:
        """Processes (other than this one) whose environment or command line names this deployment."""
        marker = str(self.root).encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
                environ = (entry / "environ").read_bytes()
                status = (entry / "status").read_text()
            except OSError:
                continue  # gone meanwhile, or not ours to read
            if "State:\tZ" in status:
                continue  # a zombie holds no resources; its parent reaps it
            if marker in cmdline or marker in environ:
                command = cmdline.replace(b"\0", b" ").decode(errors="replace")[:200]
                found.append(f"{entry.name}: {command}")
        return found


def _stop_group(proc: subprocess.Popen, timeout: float) -> str:
    """SIGTERM to the component's own process first, as a process supervisor stops a service: it then
    stops what it started (executor workers get their shutdown message, parsing processes and trigger
    runners are ended). Signalling the whole group at once instead also hits the LocalExecutor's workers
    directly, and once in five runs on a loaded machine the scheduler then waited forever for them.
    Whatever is left of the group afterwards gets SIGTERM too; SIGKILL only after `timeout`."""
    if proc.poll() is not None:
        _kill_stragglers(proc.pid)
        return f"exited before it was stopped (exit code {proc.returncode})"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_stragglers(proc.pid)
        proc.wait(timeout=30)
        return "killed"
    # The leader is gone; what it started should follow within moments.
    if _wait_group_gone(proc.pid, 15):
        return "terminated"
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return "terminated"
    if _wait_group_gone(proc.pid, timeout):
        return "left processes behind (ended by SIGTERM to its group)"
    _kill_stragglers(proc.pid)
    return "left processes behind (killed)"


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.time() + timeout
    while _group_alive(pgid):
        if time.time() > deadline:
            return False
        time.sleep(0.2)
    return True


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # fields: state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _kill_stragglers(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
