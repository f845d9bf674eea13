"""End to end through Airflow (`dag.test()`), against a real MLflow SQLite store, the real GX suite and
the local training subprocess; then the registry, the audit log and the cache are checked."""

import json
from datetime import date, datetime, timezone

import pytest

import churn_variants
from helpers import ROOT, load_example
from mlops import synthetic, tracking
from mlops.audit import AuditLog

D14 = datetime(2026, 1, 14, tzinfo=timezone.utc)
D15 = datetime(2026, 1, 15, tzinfo=timezone.utc)


def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture
def bag(airflow_db, platform):
    return dag_bag()


def run(bag, dag_id, logical_date, conf=None):
    dr = bag.dags[dag_id].test(logical_date=logical_date, run_conf=conf)
    return dr, task_states(dag_id, dr.run_id)


def task_states(dag_id, run_id):
    return {task: state for task, (state, _) in task_tries(dag_id, run_id).items()}


def task_tries(dag_id, run_id):
    """task_id -> (state, try_number)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as s:
        tis = s.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        return {ti.task_id: (str(getattr(ti.state, "value", ti.state)), ti.try_number) for ti in tis}


def completed(states, promoted):
    """validate, train and evaluate succeeded; promote succeeded only if the alias moved (else skipped)."""
    expected = {"check_request": "success", "validate_data": "success", "train": "success", "evaluate": "success",
                "promote": "success" if promoted else "skipped"}
    return states == expected


def versions(client, name):
    return sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))


def test_training_dag_end_to_end_then_cache_hit(bag, platform):
    dr, states = run(bag, "churn__train", D15)
    assert completed(states, promoted=True), states
    client = tracking.client(platform)

    champion = client.get_model_version_by_alias("churn", "champion")
    assert str(champion.version) == "1"
    assert champion.tags[tracking.INTERVAL_END] == "2026-01-15T00:00:00+00:00"
    assert champion.tags[tracking.WINDOW_LAST] == "2026-01-14"
    assert champion.tags[tracking.RUN_ID] == dr.run_id
    assert len(champion.tags[tracking.FINGERPRINT]) == 32
    assert champion.tags[tracking.REFERENCE_PROFILE_URI] == f"runs:/{champion.run_id}/{tracking.REFERENCE_PROFILE}"

    run_ = client.get_run(champion.run_id)
    tags = run_.data.tags
    assert tags[tracking.DAG_ID] == "churn__train" and tags[tracking.RUN_ID] == dr.run_id
    assert tags[tracking.TRY_NUMBER] == "1" and tags[tracking.LOGICAL_DATE].startswith("2026-01-15")
    assert tags[tracking.AIRFLOW_INTERVAL_END].startswith("2026-01-15")
    assert tags[tracking.SPEC_HASH] and tags[tracking.CODE_VERSION] and tags[tracking.GIT_SHA]
    assert run_.data.params["hp.C"] == "1.0"
    assert 0.6 < run_.data.metrics["roc_auc"] < 1
    inputs = {i.tags[0].value: i.dataset for i in run_.inputs.dataset_inputs}
    assert inputs["training"].digest == tags[tracking.FINGERPRINT]
    assert "holdout" in inputs
    artifacts = {a.path for a in client.list_artifacts(champion.run_id)}
    assert {tracking.REFERENCE_PROFILE, "validation"} <= artifacts
    validation_files = {a.path for a in client.list_artifacts(champion.run_id, "validation")}
    assert "validation/validation.json" in validation_files
    # what the model leans on, measured on its holdout: on the run, as a chart, and on the version
    importance = json.loads(open(client.download_artifacts(champion.run_id, "explanation/importance.json")).read())
    spec_features = set(load_example("churn").dataset.features)
    assert set(importance["challenger"]) == spec_features and importance["champion"] is None
    assert importance["metric"] == "roc_auc" and max(importance["challenger"].values()) > 0
    assert client.download_artifacts(champion.run_id, "explanation/importance.svg").endswith(".svg")
    assert set(json.loads(champion.tags[tracking.EXPLANATION])) <= spec_features

    audit = AuditLog(platform.audit_root, "churn").records()
    assert len(audit) == 1
    assert (audit[0].from_version, audit[0].to_version, audit[0].action) == (None, "1", "promote")
    assert audit[0].actor == f"airflow:churn__train/{dr.run_id}"
    assert audit[0].evidence["holdout_fingerprint"]

    # Same date, data, spec and code: nothing is trained again.
    dr2, states2 = run(bag, "churn__train", D15)
    assert completed(states2, promoted=False), states2
    assert versions(client, "churn") == [1]
    assert len(AuditLog(platform.audit_root, "churn").records()) == 1
    hits = client.search_runs([tracking.experiment_id(platform, "churn")],
                              f"tags.`{tracking.CACHE_HIT}` = 'true' and tags.`{tracking.RUN_ID}` = '{dr2.run_id}'")
    assert len(hits) == 1 and hits[0].data.tags[tracking.REUSED_RUN] == champion.run_id


def test_champion_on_newer_data_is_kept_then_force_and_rollback(bag, platform):
    from mlops.promotion import rollback

    client = tracking.client(platform)
    run(bag, "demand__train", D15)
    # A backfill of an earlier date trains on older data: it must not replace the champion.
    dr, states = run(bag, "demand__train", datetime(2026, 1, 8, tzinfo=timezone.utc))
    assert completed(states, promoted=False), states
    assert versions(client, "demand") == [1, 2]
    assert str(client.get_model_version_by_alias("demand", "champion").version) == "1"
    evaluation = client.search_runs([tracking.experiment_id(platform, "demand")],
                                    f"tags.`{tracking.KIND}` = 'evaluate' and tags.`{tracking.RUN_ID}` = '{dr.run_id}'")
    assert evaluation[0].data.tags["mlops.decision"] == "keep"

    # Forced from the trigger form, with a reason: it moves, and the audit says so.
    dr, states = run(bag, "demand__train", datetime(2026, 1, 8, tzinfo=timezone.utc),
                     {"force_promote": True, "force_reason": "incident 42: roll forward to the retrained model"})
    assert completed(states, promoted=True), states
    assert str(client.get_model_version_by_alias("demand", "champion").version) == "2"
    assert str(client.get_model_version_by_alias("demand", "previous-champion").version) == "1"
    audit = AuditLog(platform.audit_root, "demand").records()
    assert [(r.action, r.from_version, r.to_version) for r in audit] == [("promote", None, "1"),
                                                                        ("force_promote", "1", "2")]
    assert "incident 42" in audit[-1].reason

    # The rollback DAG, as the trigger form sends it: empty target = the previous champion.
    dr, states = run(bag, "demand__rollback", None, {"to_version": "", "reason": "v2 misbehaves"})
    assert states == {"rollback": "success"}, states
    assert str(client.get_model_version_by_alias("demand", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("demand", "previous-champion").version) == "2"
    last = AuditLog(platform.audit_root, "demand").records()[-1]
    assert (last.action, last.from_version, last.to_version, last.reason) == ("rollback", "2", "1", "v2 misbehaves")
    assert dr.run_id in last.actor

    # A version that does not exist: the task fails saying so, and nothing moves.
    _, states = run(bag, "demand__rollback", None, {"to_version": "7", "reason": "typo"})
    assert states == {"rollback": "failed"}, states
    assert str(client.get_model_version_by_alias("demand", "champion").version) == "1"
    assert len(AuditLog(platform.audit_root, "demand").records()) == 3
    # The core function the CLI uses says the same, with the version named.
    with pytest.raises(ValueError, match="no version 7"):
        rollback(platform, load_example("demand"), actor="oncall", reason="typo", to_version="7")


@pytest.mark.parametrize("conf, problem", [
    ({"force_promote": True, "force_reason": ""}, "force_reason is empty"),
    ({"force_reason": "why not"}, "force_promote is not ticked"),
    ({"compute_pool": "l4"}, "draws from Airflow pool 'mlops-gpu-l4'"),
], ids=["force-without-reason", "reason-without-force", "pool-of-another-quota"])
def test_rules_across_trigger_form_fields_stop_the_first_task(bag, platform, conf, problem, capfd):
    """Nothing is read, trained or registered: the first task fails with the fix, the rest never runs."""
    _, states = run(bag, "churn__train", D15, conf)
    assert states["check_request"] == "failed", states
    assert set(states.values()) == {"failed", "upstream_failed"}, states
    log = capfd.readouterr().out  # the task's log, as the UI shows it
    assert problem in log and "nothing was changed" in log, log[-3000:]
    assert tracking.version_by_alias(platform, "churn", "champion") is None


def test_hyperparameter_override_from_the_trigger_form_trains_a_new_version(bag, platform):
    client = tracking.client(platform)
    run(bag, "churn__train", D14)
    dr, states = run(bag, "churn__train", D14, {"hp_C": 0.05})
    assert states["train"] == "success" and states["promote"] in ("success", "skipped"), states
    assert versions(client, "churn") == [1, 2]
    v2 = client.get_model_version("churn", "2")
    assert client.get_run(v2.run_id).data.params["hp.C"] == "0.05"


@pytest.fixture
def champion_then_bad_data(bag, platform, tmp_path, monkeypatch):
    """A champion trained on good data, then a data root whose newest partition is bad."""
    root = tmp_path / "data"
    synthetic.generate("churn", date(2025, 12, 15), date(2026, 1, 13), root)
    monkeypatch.setenv("MLOPS_DATA_ROOT", str(root))
    _, states = run(bag, "churn__train", D14)
    assert completed(states, promoted=True), states
    return root


@pytest.mark.parametrize("kind", synthetic.BAD_KINDS)
def test_bad_data_stops_the_run_and_leaves_the_champion(kind, champion_then_bad_data, bag, platform):
    (bad_partition,) = synthetic.generate("churn", date(2026, 1, 14), date(2026, 1, 14), champion_then_bad_data,
                                          bad=kind, bad_date=date(2026, 1, 14))
    bad_bytes = bad_partition.read_bytes()
    _, states = run(bag, "churn__train", D15)
    assert states["validate_data"] == "failed"
    assert states["train"] == "upstream_failed" and states["promote"] == "upstream_failed"
    client = tracking.client(platform)
    assert versions(client, "churn") == [1]
    assert str(client.get_model_version_by_alias("churn", "champion").version) == "1"
    assert len(AuditLog(platform.audit_root, "churn").records()) == 1
    # The data stays as it was: validation reads, never rewrites.
    assert bad_partition.read_bytes() == bad_bytes


def test_hyperparameter_the_library_rejects_fails_train_at_once_without_a_retry(tmp_path, monkeypatch, airflow_db,
                                                                                 platform, capfd):
    """scikit-learn refuses C=-5 (a spec's default with no range, so nothing stops it before training): no
    retry can change that, so train fails on its first try, saying why."""
    churn_variants.rejected_hyperparameter(tmp_path, monkeypatch)
    dr, _ = run(dag_bag(), "churn__train", D15)
    tries = task_tries("churn__train", dr.run_id)
    assert tries["train"] == ("failed", 1) and tries["evaluate"][0] == "upstream_failed", tries
    log = capfd.readouterr().out
    assert "exited with code 65" in log and "Not retried: a retry cannot fix this" in log, log[-3000:]
    assert "'C' parameter of LogisticRegression must be" in log
    # The failed task has no result, and nothing of the platform's looks for one.
    assert "XCom not found" not in log, log[log.find("XCom not found") - 2000:][:3000]
    assert tracking.version_by_alias(platform, "churn", "champion") is None


def test_transient_trainer_failure_is_retried_and_the_retry_trains(tmp_path, monkeypatch, airflow_db, platform,
                                                                    capfd):
    marker = churn_variants.failing_once(tmp_path, monkeypatch, retries=1, retry_delay_seconds=1)
    dr, _ = run(dag_bag(), "churn__train", D15)
    tries = task_tries("churn__train", dr.run_id)
    assert tries["train"] == ("success", 2) and tries["promote"][0] == "success", tries
    assert marker.exists()
    log = capfd.readouterr().out
    assert "exited with code 75 (network)" in log and "Retried while tries are left" in log, log[-3000:]
    assert "Connection reset by peer" in log
