"""Each failure reason of a training pod, end to end through the emulated cluster: the message the user
reads, whether the task is retried, and that no pod is left behind either way. Specs are copies of the
churn example with a 1 s retry delay, so a retry costs seconds."""

from datetime import datetime, timezone

import churn_variants
from k8s_e2e import emulated_cluster, platform_pods, task_instances, training_dag, write_spec
from mlops import tracking

D15 = datetime(2026, 1, 15, tzinfo=timezone.utc)


def events(cluster, reason: str) -> list[str]:
    return [e.message for e in cluster.core_v1().list_namespaced_event("mlops").items if e.reason == reason]


def test_evicted_pod_is_retried_and_the_retry_trains(tmp_path, monkeypatch, platform, airflow_db, capfd):
    write_spec(tmp_path, monkeypatch, retries=1, retry_delay_seconds=1)
    with emulated_cluster(tmp_path, monkeypatch, platform, inject={"train-churn": ["evict"]},
                          fail_after=1.0) as cluster:
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


def test_trainer_failing_for_good_is_not_retried_and_says_why(tmp_path, monkeypatch, platform, airflow_db, capfd):
    # A hyperparameter scikit-learn rejects: the trainer exits with the permanent code inside the pod.
    churn_variants.rejected_hyperparameter(tmp_path, monkeypatch, retries=2, retry_delay_seconds=1)
    with emulated_cluster(tmp_path, monkeypatch, platform) as cluster:
        dr = training_dag().test(logical_date=D15)
        tis = task_instances("churn__train", dr.run_id)
        assert tis["train"] == ("failed", 1) and tis["promote"][0] == "upstream_failed", tis
        assert platform_pods(cluster) == []
    out = capfd.readouterr().out
    assert "exited with code 65 (authoring): AuthoringError: trainers.churn:train raised InvalidParameterError" in out
    reason = out[out.index("exited with code 65"):]
    assert "Not retried: a retry cannot fix this" in reason and "Last lines:" in reason
    assert "'C' parameter of LogisticRegression must be" in reason
    assert "XCom not found" not in out  # the failed task has no result, and nothing looks for one
    assert tracking.version_by_alias(platform, "churn", "champion") is None


def test_transient_trainer_failure_in_the_pod_is_retried_and_the_retry_trains(tmp_path, monkeypatch, platform,
                                                                               airflow_db, capfd):
    # The first try's trainer hits a connection reset (as with a tracking server briefly down) and exits
    # with the transient code; the second trains.
    marker = churn_variants.failing_once(tmp_path, monkeypatch, retries=1, retry_delay_seconds=1)
    with emulated_cluster(tmp_path, monkeypatch, platform) as cluster:
        dr = training_dag().test(logical_date=D15)
        tis = task_instances("churn__train", dr.run_id)
        assert tis["train"] == ("success", 2) and tis["promote"][0] == "success", tis
        assert platform_pods(cluster) == []
    assert marker.exists()
    out = capfd.readouterr().out
    assert "exited with code 75 (network)" in out and "Connection reset by peer" in out
    assert "Retried while tries are left" in out
