"""The platform against a real MLflow tracking server with basic auth (Postgres backend store, proxied
artifacts), configured only through the Airflow connection `mlops_mlflow`.

One training run (`dag.test()`, local backend) with the platform user's credentials lands in the server's
registry, and never in the local SQLite store. Its password is a canary: it must appear in no task output or
log file, no XCom, no MLflow run, model version, database row or artifact. Then a run with a wrong password
fails in validate_data with a message naming the connection, and leaves the registry and the audit log as
they were. An anonymous request to the server is refused.

Without PostgreSQL this skips with the reason, except under CI=true, where it fails."""

from __future__ import annotations

import json
import os
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from airflow_deployment import PG_HOST, PG_PORT, PG_USER, postgres_problem, require
from helpers import ROOT
from mlflow_server import mlflow_server

pytestmark = pytest.mark.services

D15 = datetime(2026, 1, 15, tzinfo=timezone.utc)
D16 = datetime(2026, 1, 16, tzinfo=timezone.utc)
PLATFORM_USER = "mlops-platform"
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def canary() -> str:
    return f"canary-{secrets.token_hex(16)}"


@pytest.fixture(scope="module")
def server(tmp_path_factory, canary):
    require("services tests need PostgreSQL", [postgres_problem()])
    started = time.perf_counter()
    with mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as srv:
        srv.create_user(PLATFORM_USER, canary)
        TIMINGS["mlflow server up"] = time.perf_counter() - started
        yield srv


def connection(server, password: str) -> str:
    return json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": server.port,
                       "login": PLATFORM_USER, "password": password})


def run_training(monkeypatch, conn: str, logical_date):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_MLFLOW", conn)
    bag = DagBag(dag_folder=str(ROOT / "dags"))  # a fresh DAG object per run, as the scheduler would parse it
    dr = bag.dags["churn__train"].test(logical_date=logical_date)
    return dr, task_states("churn__train", dr.run_id)


def task_states(dag_id, run_id):
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as s:
        tis = s.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in tis}


def registry(server, auth) -> dict:
    """The champion and the versions of churn, read over HTTP."""
    alias = server.api("GET", "registered-models/alias", auth=auth, params={"name": "churn", "alias": "champion"})
    assert alias.status_code == 200, alias.text
    versions = server.api("GET", "model-versions/search", auth=auth, params={"filter": "name = 'churn'"})
    assert versions.status_code == 200, versions.text
    return {"champion": alias.json()["model_version"]["version"],
            "versions": sorted(v["version"] for v in versions.json().get("model_versions", []))}


def audit_ids(platform) -> list[str]:
    from mlops.audit import AuditLog

    return [r.id for r in AuditLog(platform.audit_root, "churn").records()]


def test_anonymous_and_wrong_credentials_are_refused(server, canary):
    search = "experiments/search"
    assert server.api("GET", search, params={"max_results": 1}).status_code == 401
    wrong = (PLATFORM_USER, "not-the-password")
    assert server.api("GET", search, auth=wrong, params={"max_results": 1}).status_code == 401
    assert server.api("GET", search, auth=(PLATFORM_USER, canary), params={"max_results": 1}).status_code == 200


def test_training_through_the_server_leaks_no_secret_and_a_wrong_password_changes_nothing(
        server, canary, airflow_db, platform, monkeypatch, capfd):
    auth = (PLATFORM_USER, canary)
    started = time.perf_counter()
    dr, states = run_training(monkeypatch, connection(server, canary), D15)
    TIMINGS["training run (server)"] = time.perf_counter() - started
    out = capfd.readouterr()
    output = out.out + out.err
    assert states == {"check_request": "success", "validate_data": "success", "train": "success",
                      "evaluate": "success", "promote": "success"}, (states, output[-5000:], server.log_tail())
    assert f"MLflow tracking: {server.url} as {PLATFORM_USER} (from Airflow connection `mlops_mlflow`)" in output

    # The registry on the server has the champion; the local store was never touched.
    before = registry(server, auth)
    assert before == {"champion": "1", "versions": ["1"]}
    local = Path(platform.home) / "mlflow"
    assert not (local / "mlflow.db").exists() and not (local / "artifacts").exists()
    trained = server.api("GET", "runs/get", auth=auth, params={"run_id": _champion_run(server, auth)}).json()["run"]
    assert trained["info"]["artifact_uri"].startswith("mlflow-artifacts:/"), trained["info"]["artifact_uri"]
    assert any(server.artifacts.rglob("MLmodel")), "the model went to the server's artifact store"
    assert len(audit_ids(platform)) == 1

    # The canary (the connection's password) is nowhere.
    assert canary not in output, "the password is in the task output"
    assert_nowhere(canary, server, platform)

    # A wrong password: validate_data fails at once, nothing trains, nothing in the registry or audit log moves.
    wrong = f"wrong-{secrets.token_hex(8)}"
    audit_before = audit_ids(platform)
    started = time.perf_counter()
    dr2, states = run_training(monkeypatch, connection(server, wrong), D16)
    TIMINGS["wrong-password run"] = time.perf_counter() - started
    out = capfd.readouterr()
    output = out.out + out.err
    assert states["validate_data"] == "failed" and states["train"] == "upstream_failed" \
        and states["promote"] == "upstream_failed", (states, output[-5000:])
    assert (f"The MLflow tracking server at {server.url} refused the credentials (401 Unauthorized). To fix it, fix "
            "the login/password of the Airflow connection `mlops_mlflow`") in output, output[-5000:]
    assert wrong not in output
    assert registry(server, auth) == before
    assert audit_ids(platform) == audit_before
    runs = _all_runs(server)
    assert not [r for r in runs if _tag(r, "mlops.airflow.run_id") == dr2.run_id], "the wrong-password run logged a run"
    assert os.environ.get("MLFLOW_TRACKING_PASSWORD") in (None, ""), "the task left the password in the environment"


def _champion_run(server, auth) -> str:
    r = server.api("GET", "registered-models/alias", auth=auth, params={"name": "churn", "alias": "champion"})
    return r.json()["model_version"]["run_id"]


def _tag(run: dict, key: str):
    return next((t["value"] for t in run["data"].get("tags", []) if t["key"] == key), None)


def _all_runs(server) -> list[dict]:
    exps = server.api("POST", "experiments/search", auth=server.admin, json={"max_results": 1000}).json()
    ids = [e["experiment_id"] for e in exps.get("experiments", [])]
    r = server.api("POST", "runs/search", auth=server.admin, json={"experiment_ids": ids, "max_results": 1000})
    assert r.status_code == 200, r.text
    return r.json().get("runs", [])


def assert_nowhere(canary: str, server, platform) -> None:
    """Not in XCom, task log files, MLflow (runs' params and tags, model versions, every row of its database,
    its artifacts), nor in the platform's own files (audit log, validation reports)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as s:
        xcoms = [(x.dag_id, x.run_id, x.task_id, json.dumps(x.value, default=str)) for x in s.query(XComModel)]
    assert xcoms, "the runs wrote XComs"
    assert not [x[:3] for x in xcoms if canary in x[3]], "the password is in an XCom"

    logs = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    leaked = [p for p in logs.rglob("*") if p.is_file() and canary.encode() in p.read_bytes()] if logs.exists() else []
    assert not leaked, f"the password is in task logs: {leaked}"

    runs = _all_runs(server)
    assert runs, "the training run and the evaluation are on the server"
    for run in runs:
        for kind in ("params", "tags"):
            for item in run["data"].get(kind, []):
                assert canary not in item["key"] and canary not in item["value"], (run["info"]["run_id"], kind, item)
    versions = server.api("GET", "model-versions/search", auth=server.admin, params={"filter": "name = 'churn'"})
    assert canary not in versions.text

    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=server.db_name)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
            tables = [t for (t,) in cur.fetchall()]
            for table in tables:
                cur.execute(f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE %s', (f"%{canary}%",))
                assert cur.fetchone()[0] == 0, f"the password is in the tracking database, table {table}"
    finally:
        conn.close()
    assert len(tables) > 10

    for root in (server.artifacts, Path(platform.home)):
        found = [p for p in root.rglob("*") if p.is_file() and canary.encode() in p.read_bytes()]
        assert not found, f"the password is in files: {found}"


def teardown_module(module):
    if TIMINGS:
        print("\nmlflow server tests: " + ", ".join(f"{k} {v:.1f}s" for k, v in TIMINGS.items()))
