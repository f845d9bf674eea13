"""Runs last (conftest orders it): the deployment stops on SIGTERM, every component within the timeout,
and leaves no process and no database connection behind. The model servers a deploy run started are not
Airflow's: they go on serving while Airflow is down (that is the point of an endpoint), and stop with
`python -m mlops.serving stop`."""

import time

import pytest

from airflow_deployment import _admin
from mlops.serving import control, endpoint

pytestmark = pytest.mark.services


def connections(db_name: str) -> int:
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (db_name,))
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_every_component_stops_on_sigterm_and_leaves_nothing_behind(airflow):
    assert connections(airflow.db_name) > 0  # the components are connected until now
    outcome = airflow.stop(timeout=60)
    assert outcome == {name: "terminated" for name in ("scheduler", "triggerer", "dag-processor", "api-server")}, (
        f"{outcome}\n{airflow.log_tails()}")
    serving = airflow.mlops_home / "serving"
    supervisor = control.find(serving)
    if supervisor is not None:  # the browser test deployed a model: its endpoint outlives the scheduler
        endpoints = [m["url"] for m in supervisor.status()["models"].values()]
        assert endpoints and all(endpoint.healthy(url) for url in endpoints), endpoints
        assert control.stop(serving)
    deadline = time.time() + 10
    while (left := airflow.leftover_processes()) and time.time() < deadline:
        time.sleep(0.5)
    assert left == [], left
    assert connections(airflow.db_name) == 0
