from datetime import datetime, timedelta, timezone

from mlops.orphans import TaskKey, find_orphans

NOW = datetime(2026, 1, 15, 12, tzinfo=timezone.utc)


def pod(name, try_number=1, age_minutes=60, annotated=True):
    notes = {"mlops.airflow/dag-id": "churn__train", "mlops.airflow/run-id": f"run-{name}",
             "mlops.airflow/task-id": "train", "mlops.airflow/try-number": str(try_number)} if annotated else {}
    created = (NOW - timedelta(minutes=age_minutes)).isoformat().replace("+00:00", "Z")
    return {"metadata": {"name": name, "namespace": "mlops", "annotations": notes, "creationTimestamp": created}}


STATES = {"running": ("running", 1), "deferred": ("deferred", 1), "failed": ("failed", 1),
          "retried": ("running", 2), "success": ("success", 1)}


def lookup(key: TaskKey):
    return STATES.get(key.run_id.removeprefix("run-"))


def test_orphans_are_pods_whose_task_is_over_gone_or_on_another_try():
    pods = [pod("running"), pod("deferred"), pod("failed"), pod("retried"), pod("success"), pod("vanished"),
            pod("stranger", annotated=False), pod("young-vanished", age_minutes=2)]
    found = {o.name: o.reason for o in find_orphans(pods, lookup, now=NOW)}
    assert set(found) == {"failed", "retried", "success", "vanished", "stranger"}
    assert "is failed" in found["failed"]
    assert "try 1, but the task runs try 2" in found["retried"]
    assert "no longer exists" in found["vanished"]
