"""Each failure reason of a training pod, end to end through the emulated cluster: the message the user
reads, whether the task is retried, and that no pod is left behind either way. Specs are copies of the
churn example with a 1 s retry delay, so a retry costs seconds."""

from datetime import datetime, timezone

import pytest

from k8s_e2e import emulated_cluster, platform_pods, task_instances, training_dag, write_spec
from mlops import tracking

D15 = datetime(2026, 1, 15, tzinfo=timezone.utc)


def events(cluster, reason: str) -> list[str]:
    return [e.message for e in cluster.core_v1().list_namespaced_event("mlops").items if e.reason == reason]


def test_evicted_pod_is_retried_and_the_retry_trains(tmp_path, monkeypatch, platform, airflow_db, capfd):
    write_spec(tmp_path, monkeypatch, retries=1, retry_delay_seconds=1)
    with emulated_cluster(tmp_path, monkeypatch, platform, inject={"train-churn": ["evict"]}, fail_after=1.0) as cluster:
        dr = training_dag().test(logical_date=D15)
        tis = task_instances("churn__train", dr.run_id)
        assert tis["train"] == ("success", 2) and tis["promote"][0] == "success", tis
        assert len(events(cluster, "Evicted")) == 1
        assert platform_pods(cluster) == []  # the evicted pod and the one that trained
    assert "was evicted from its node in pool 'cpu'" in capfd.readouterr().out
    assert tracking.version_by_alias(platform, "churn", "champion") is not None


def test_unschedulable_spot_pod_falls_back_to_on_demand_on_the_last_try(tmp_path, monkeypatch, platform, airflow_db,
                                                                         capfd):
    # The cluster has no spot L4 node (the spot pool is out of capacity): try 1 waits for one until its
    # schedule timeout, the last try asks for the on-demand fallback pool and lands on l4-1.
    write_spec(tmp_path, monkeypatch, pool="l4-spot", gpus=1, cpu="1", retries=1, retry_delay_seconds=1)
    monkeypatch.setenv("MLOPS_POD_SCHEDULE_TIMEOUT_S", "4")
    with emulated_cluster(tmp_path, monkeypatch, platform) as cluster:
        dag = training_dag()
        assert dag.get_task("train").pool == "mlops-gpu-l4"  # fixed at parse time, shared by both pools
        dr = dag.test(logical_date=D15)
        tis = task_instances("churn__train", dr.run_id)
        assert tis["train"] == ("success", 2), tis
        assert any("didn't match Pod's node affinity/selector" in m for m in events(cluster, "FailedScheduling"))
        assert [m.split(" to ")[-1] for m in events(cluster, "Scheduled")] == ["l4-1"]
        assert platform_pods(cluster) == []
    out = capfd.readouterr().out
    assert "could not be scheduled in pool 'l4-spot'" in out


def test_image_pull_error_fails_at_once_without_retry(tmp_path, monkeypatch, platform, airflow_db, capfd):
    write_spec(tmp_path, monkeypatch, retries=2, retry_delay_seconds=1)
    monkeypatch.setenv("MLOPS_POD_STARTUP_TIMEOUT_S", "4")
    with emulated_cluster(tmp_path, monkeypatch, platform, inject={"train-churn": "image-pull"}) as cluster:
        dr = training_dag().test(logical_date=D15)
        tis = task_instances("churn__train", dr.run_id)
        assert tis["train"] == ("failed", 1), tis
        assert platform_pods(cluster) == []
    out = capfd.readouterr().out
    assert "cannot pull its image (ImagePullBackOff" in out and "check trainer.image or MLOPS_TRAINER_IMAGE" in out


def test_crashing_trainer_fails_at_once_with_its_last_log_lines(tmp_path, monkeypatch, platform, airflow_db, capfd):
    write_spec(tmp_path, monkeypatch, retries=2, retry_delay_seconds=1)
    with emulated_cluster(tmp_path, monkeypatch, platform) as cluster:
        # A hyperparameter scikit-learn rejects: the trainer process exits non-zero inside the pod.
        dr = training_dag().test(logical_date=D15, run_conf={"hp_C": -1.0})
        tis = task_instances("churn__train", dr.run_id)
        assert tis["train"] == ("failed", 1) and tis["promote"][0] == "upstream_failed", tis
        assert platform_pods(cluster) == []
    out = capfd.readouterr().out
    assert "exited with code 1. Last lines:" in out
    reason = out[out.index("exited with code 1. Last lines:"):]
    assert "'C' parameter of LogisticRegression must be" in reason
    assert tracking.version_by_alias(platform, "churn", "champion") is None
