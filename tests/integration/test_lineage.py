"""OpenLineage events of a training run, through the provider's own listener and file transport: the command a
person runs (`airflow dags test`) with `[openlineage] transport` set, then the events file checked field by
field. A run whose data fails validation emits a failed event naming the failed expectations; no event
carries a secret (canaries in a connection and in the worker's environment)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest

from mlops import tracking
from mlops.lineage import datasets

NAMESPACE = "mlops-lineage-test"


@pytest.fixture
def canary() -> str:
    return f"canary-{secrets.token_hex(16)}"


def dags_test(tmp_path, canary: str, dag_id: str, day: str, data_root=None) -> list[dict]:
    events = tmp_path / "lineage.jsonl"
    env = {**os.environ,
           "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(events),
                                                          "append": True}),
           "AIRFLOW__OPENLINEAGE__NAMESPACE": NAMESPACE, "AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD": "True",
           "AIRFLOW_CONN_SMTP_VAULT": json.dumps({"conn_type": "smtp", "host": "smtp.example.internal",
                                                  "login": "mailer", "password": canary}),
           "MLFLOW_TRACKING_PASSWORD": canary, "MLOPS_TEST_API_TOKEN": canary}
    if data_root is not None:
        env["MLOPS_DATA_ROOT"] = str(data_root)
    out = subprocess.run([sys.executable, "-m", "airflow", "dags", "test", dag_id, day], env=env,
                         capture_output=True, text=True, timeout=600)
    text = events.read_text() if events.exists() else ""
    assert canary not in text and canary not in out.stdout + out.stderr
    found = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert found, f"no lineage events written\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return found


def task_event(events: list[dict], dag_id: str, task: str, kind: str) -> dict:
    matching = [e for e in events if e["job"]["name"] == f"{dag_id}.{task}" and e["eventType"] == kind]
    assert matching, sorted({(e["job"]["name"], e["eventType"]) for e in events})
    return matching[-1]


def test_a_training_run_reports_its_data_model_code_and_checks(tmp_path, canary, platform, airflow_db):
    from mlops.spec import load_spec

    events = dags_test(tmp_path, canary, "churn__train", "2026-01-15")
    spec = load_spec(platform.models_dir / "churn.yaml")
    client = tracking.client(platform)
    champion = client.get_model_version_by_alias("churn", "champion")
    run = client.get_run(champion.run_id)
    first_day, last_day = run.data.tags[tracking.WINDOW_FIRST], run.data.tags[tracking.WINDOW_LAST]
    expected = [name for _, _, name in datasets.partitions(spec, platform.data_root, first_day, last_day)]
    assert all(e["job"]["namespace"] == NAMESPACE for e in events)

    validate = task_event(events, "churn__train", "validate_data", "COMPLETE")
    names = [i["name"] for i in validate["inputs"]]
    assert names == expected and len(names) == spec.dataset.window.days and last_day == "2026-01-14"
    assert validate["inputs"][0]["namespace"] == "file"
    first = validate["inputs"][0]
    assert [f["name"] for f in first["facets"]["schema"]["fields"]] == [*spec.dataset.features, spec.dataset.target]
    assert first["inputFacets"]["dataQualityMetrics"]["rowCount"] > 0
    checks = first["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert checks and all(c["success"] for c in checks)
    assert {"expect_column_values_to_not_be_null", "expect_column_values_to_be_in_set"} <= {c["assertion"]
                                                                                           for c in checks}
    assert {c["name"] for c in checks} == {"rows", "partitions"}
    assert validate["run"]["facets"]["mlops"]["facts"]["validation"]["success"] is True

    train = task_event(events, "churn__train", "train", "COMPLETE")
    assert [i["name"] for i in train["inputs"]] == names
    [model] = train["outputs"]
    assert model["name"] == f"models/churn/{champion.version}" and model["namespace"].startswith("mlflow+sqlite:")
    facts = train["run"]["facets"]["mlops"]["facts"]
    assert facts["mlflow_run_id"] == champion.run_id
    assert facts["fingerprint"] == run.data.tags[tracking.FINGERPRINT]
    assert facts["code_version"] == run.data.tags[tracking.CODE_VERSION]
    assert facts["git_sha"] == run.data.tags[tracking.GIT_SHA]
    assert facts["image_digest"] == run.data.tags[tracking.IMAGE_DIGEST] and facts["cache_hit"] is False
    assert facts["usage"]["pool"] == "cpu" and facts["usage"]["wall_seconds"] > 0
    assert train["run"]["facets"]["parent"]["job"]["name"] == "churn__train"  # the provider's own facets too

    promote = task_event(events, "churn__train", "promote", "COMPLETE")
    assert [i["name"] for i in promote["inputs"]] == [f"models/churn/{champion.version}"]
    assert promote["run"]["facets"]["mlops"]["facts"]["outcome"] == "promoted"


def test_a_validation_failure_emits_a_failed_event_with_the_failed_expectations(tmp_path, canary, platform,
                                                                                airflow_db, sample_data_root):
    import shutil

    import pandas as pd

    data = tmp_path / "data"
    shutil.copytree(sample_data_root, data)
    bad = data / "churn" / "date=2026-01-14" / "part-0.parquet"
    frame = pd.read_parquet(bad)
    frame.loc[: len(frame) // 3, "monthly_charges"] = None
    frame.to_parquet(bad)
    events = dags_test(tmp_path, canary, "churn__train", "2026-01-15", data_root=data)
    failed = task_event(events, "churn__train", "validate_data", "FAIL")
    day = next(i for i in failed["inputs"] if i["name"].endswith("date=2026-01-14/part-0.parquet"))
    checks = day["inputFacets"]["dataQualityAssertions"]["assertions"]
    broken = [c for c in checks if not c["success"]]
    assert [(c["assertion"], c["column"]) for c in broken] == [("expect_column_values_to_not_be_null",
                                                                "monthly_charges")]
    assert failed["run"]["facets"]["mlops"]["facts"]["validation"]["blocking_failures"]
    assert "errorMessage" in failed["run"]["facets"]
    assert not [e for e in events if e["job"]["name"] == "churn__train.train"]  # it never ran
