"""Cost lineage against a real MLflow store: a local training run on a GPU pool records its GPU-seconds and the
catalogue's price on its run and its version, a cache hit costs nothing and says so, and the fleet sums
generated runs of 30 days by why they ran, with serving's replica-hours from rollout records."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from helpers import ROOT
from mlops import cost, tracking
from mlops.compute import catalogue_path, load_catalogue

D15 = datetime(2026, 1, 15, tzinfo=timezone.utc)


@pytest.fixture
def bag(airflow_db, platform):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_a_local_run_on_a_gpu_pool_is_priced_by_its_gpu_seconds_and_a_cache_hit_is_free(bag, platform):
    catalogue = load_catalogue(catalogue_path(platform.compute_dir))
    l4 = catalogue.pools["l4"]
    dag = bag.dags["demand_nn__train"]
    dr = dag.test(logical_date=D15)
    client = tracking.client(platform)
    champion = client.get_model_version_by_alias("demand_nn", "champion")
    run = client.get_run(champion.run_id)
    wall = run.data.metrics[cost.WALL_SECONDS]
    assert wall > 1  # the trainer process's own wall time, measured around it
    assert run.data.metrics[cost.GPU_SECONDS] == pytest.approx(wall * 1)  # compute.gpus: 1
    # one L4 of the two on a g2-standard-24: the GPU's price and half the node's
    expected = wall / 3600 * (1 * l4.price_per_gpu_hour + 0.5 * l4.price_per_node_hour)
    assert run.data.metrics[cost.ESTIMATE] == pytest.approx(expected, rel=1e-3)
    tags = run.data.tags
    assert (tags[cost.POOL], tags[cost.NODE_TYPE], tags[cost.GPUS], tags[cost.CURRENCY]) == (
        "l4", "g2-standard-24", "1", "USD")
    assert tags[cost.RUN_TYPE] == "manual"
    on_version = json.loads(champion.tags[cost.VERSION_COST])
    assert on_version["estimate"] == pytest.approx(expected, rel=1e-3) and on_version["gpu_seconds"] > 1

    again = dag.test(logical_date=D15)  # same data, spec, code and parameters: a cache hit
    [hit] = client.search_runs([tracking.experiment_id(platform, "demand_nn")],
                               f"tags.`{tracking.RUN_ID}` = '{again.run_id}' and tags.`{tracking.KIND}` = 'cache_hit'")
    assert hit.data.tags[tracking.CACHE_HIT] == "true"
    assert hit.data.metrics[cost.ESTIMATE] == 0 and hit.data.metrics[cost.GPU_SECONDS] == 0
    assert hit.data.tags[cost.NOTE].startswith("cache hit")
    assert json.loads(client.get_model_version("demand_nn", champion.version).tags[cost.VERSION_COST]) == on_version
    assert dr.run_id != again.run_id


def _generated_run(client, exp_id: str, days_ago: float, run_type: str, estimate: float, gpu_seconds: float,
                   now: datetime) -> None:
    start = int((now - timedelta(days=days_ago)).timestamp() * 1000)
    run = client.create_run(exp_id, start_time=start, tags={tracking.KIND: "train", cost.RUN_TYPE: run_type,
                                                             cost.CURRENCY: "USD"})
    for key, value in ((cost.ESTIMATE, estimate), (cost.GPU_SECONDS, gpu_seconds), (cost.WALL_SECONDS, 600.0)):
        client.log_metric(run.info.run_id, key, value, timestamp=start)
    client.set_terminated(run.info.run_id, end_time=start + 600_000)


def test_the_fleet_sums_30_days_of_runs_by_why_they_ran_and_the_endpoints_replica_hours(platform):
    from mlops.fleet import model_status
    from mlops.serving.records import Rollout, RolloutLog
    from mlops.spec import load_spec

    now = datetime.now(timezone.utc)
    client = tracking.client(platform)
    exp_id = tracking.experiment_id(platform, "churn")
    for days_ago, run_type, estimate in ((1, "scheduled", 1.0), (2, "scheduled", 1.5), (3, "asset_triggered", 2.0),
                                         (5, "backfill", 0.25), (6, "backfill", 0.25), (7, "manual", 4.0),
                                         (45, "scheduled", 100.0)):  # the last one is older than the window
        _generated_run(client, exp_id, days_ago, run_type, estimate, gpu_seconds=3600 * estimate, now=now)

    spend = cost.training_spend(platform, "churn", days=30, now=now)
    assert spend["total"] == {"runs": 6, "gpu_hours": 9.0, "cost": 9.0} and spend["currency"] == "USD"
    assert {k: (v["runs"], v["cost"]) for k, v in spend["by_kind"].items()} == {
        "scheduled": (2, 2.5), "drift-triggered": (1, 2.0), "backfill": (2, 0.5), "manual": (1, 4.0)}
    assert sum(spend["per_day"].values()) == pytest.approx(9.0)
    assert cost.retraining_estimate(platform, "churn") == {"runs": 5, "cost": 1.0, "minutes": 10.0,
                                                           "currency": "USD"}

    # v1 served from 10 days ago until v2 replaced it 4 days ago; v2 serves since: 10 days of one replica
    log = RolloutLog(platform.audit_root, "churn")
    for version, from_version, days_ago in (("1", None, 10), ("2", "1", 4)):
        finished = (now - timedelta(days=days_ago)).isoformat(timespec="milliseconds")
        log.save(Rollout(f"r{version}", "churn", "local", from_version, version, "test", "generated",
                         started=finished, verdict="deployed", finished=finished))
    spec = load_spec(platform.models_dir / "churn.yaml")
    cpu = load_catalogue(catalogue_path(platform.compute_dir)).pools[spec.serving.pool]
    status = model_status(platform, spec)["cost"]
    assert status["serving"]["replica_hours"] == pytest.approx(24 * 10 * spec.serving.replicas, rel=1e-3)
    assert status["serving"]["cost"] == pytest.approx(24 * 10 * spec.serving.replicas * cpu.price_per_node_hour,
                                                      rel=1e-3)
    assert status["training"]["total"]["cost"] == 9.0

    from mlops_airflow.fleet.render import fleet_page

    page = fleet_page([{**model_status(platform, spec), "airflow": {"dag_urls": {}, "data_docs_url": None}}],
                      user_name="ana", airflow_base="", mlflow_ui="")
    assert "Cost, last 30 days" in page and "drift-triggered" in page and "9.00 GPU-h" in page
    assert "one retraining costs about 1.00 USD" in page
