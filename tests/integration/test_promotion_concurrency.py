"""Two promotions of one model at the same moment, in two processes, against one MLflow store:
one consistent champion and one audit record come out."""

import multiprocessing as mp
import os

import pytest

from helpers import load_example
from mlops import tracking
from mlops.audit import AuditLog
from mlops.policy import Decision


def _register_versions(settings, name, n):
    client = tracking.client(settings)
    client.create_registered_model(name)
    return [str(client.create_model_version(name, source=f"{settings.artifact_root}/stub/{i}").version)
            for i in range(n)]


def _promote(env, version, barrier, results):
    os.environ.update(env)
    from mlops.promotion import promote
    from mlops.settings import get_settings

    spec = load_example("churn")
    decision = Decision(True, "promote", ["test"])
    settings = get_settings()
    tracking.version_by_alias(settings, "churn", "champion")  # warm up: imports and connections
    barrier.wait()  # both start together
    result = promote(settings, spec, version, decision, expected_champion=None, actor=f"proc-{version}")
    results.put(result.outcome)


def _race(platform, versions):
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(len(versions)), ctx.Queue()
    env = {k: v for k, v in os.environ.items() if k.startswith(("MLOPS_", "MLFLOW_", "PYTHONPATH"))}
    procs = [ctx.Process(target=_promote, args=(env, v, barrier, results)) for v in versions]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    return sorted(results.get(timeout=5) for _ in procs)


@pytest.mark.parametrize("same_version", [False, True], ids=["two-challengers", "same-challenger-twice"])
def test_concurrent_promotions_leave_one_champion_and_one_record(platform, same_version):
    v1, v2 = _register_versions(platform, "churn", 2)
    outcomes = _race(platform, [v1, v1] if same_version else [v1, v2])
    assert outcomes == (["promoted", "unchanged"] if same_version else ["promoted", "stale"])

    champion = str(tracking.client(platform).get_model_version_by_alias("churn", "champion").version)
    records = AuditLog(platform.audit_root, "churn").records()
    assert len(records) == 1
    assert records[0].to_version == champion and records[0].from_version is None
    assert tracking.version_by_alias(platform, "churn", "previous-champion") is None


def test_retrying_a_promotion_changes_nothing_twice(platform):
    from mlops.promotion import promote

    spec = load_example("churn")
    v1, v2 = _register_versions(platform, "churn", 2)
    decision = Decision(True, "promote", ["test"])
    assert promote(platform, spec, v1, decision, None, "a").outcome == "promoted"
    assert promote(platform, spec, v2, decision, v1, "a").outcome == "promoted"
    again = promote(platform, spec, v2, decision, v1, "a")
    assert again.outcome == "unchanged"
    assert [r.to_version for r in AuditLog(platform.audit_root, "churn").records()] == [v1, v2]


def test_an_alias_moved_without_its_record_is_completed_once(platform):
    from mlops.promotion import promote

    spec = load_example("churn")
    (v1,) = _register_versions(platform, "churn", 1)
    # Simulate a crash between moving the alias and writing the record.
    tracking.client(platform).set_registered_model_alias("churn", "champion", v1)
    decision = Decision(True, "promote", ["test"])
    assert promote(platform, spec, v1, decision, None, "retry").outcome == "unchanged"
    assert promote(platform, spec, v1, decision, None, "retry").outcome == "unchanged"
    records = AuditLog(platform.audit_root, "churn").records()
    assert [(r.action, r.to_version) for r in records] == [("repair", v1)]


def test_registry_cli_audit_and_rollback(platform):
    import subprocess
    import sys

    from mlops.promotion import promote

    spec = load_example("churn")
    v1, v2 = _register_versions(platform, "churn", 2)
    decision = Decision(True, "promote", ["better"])
    promote(platform, spec, v1, decision, None, "airflow:churn__train/a")
    promote(platform, spec, v2, decision, v1, "airflow:churn__train/b")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "mlops.registry", *args], capture_output=True, text=True,
                              env=os.environ.copy())

    missing = cli("rollback", "churn", "--reason", "x", "--to-version", "99")
    assert missing.returncode == 2 and "no version 99" in missing.stderr
    done = cli("rollback", "churn", "--reason", "v2 scores new stores badly", "--actor", "oncall")
    assert done.returncode == 0, done.stderr
    assert f"rolled back v{v2} -> v{v1}" in done.stdout
    assert str(tracking.client(platform).get_model_version_by_alias("churn", "champion").version) == v1
    audit = cli("audit", "churn")
    assert audit.returncode == 0, audit.stderr
    lines = audit.stdout.strip().splitlines()
    assert len(lines) == 2 + 3
    assert "rollback" in lines[-1] and "oncall" in lines[-1] and "v2 scores new stores badly" in lines[-1]


def test_clearing_an_old_promote_does_not_undo_a_rollback(platform):
    from mlops.promotion import promote, rollback

    spec = load_example("churn")
    v1, v2 = _register_versions(platform, "churn", 2)
    decision = Decision(True, "promote", ["test"])
    promote(platform, spec, v1, decision, None, "airflow:churn__train/r1")
    assert promote(platform, spec, v2, decision, v1, "airflow:churn__train/r2").outcome == "promoted"
    rollback(platform, spec, actor="oncall", reason="v2 is wrong")
    again = promote(platform, spec, v2, decision, v1, "airflow:churn__train/r2")  # run r2's promote cleared
    assert again.outcome == "unchanged"
    assert str(tracking.client(platform).get_model_version_by_alias("churn", "champion").version) == v1
    assert [r.action for r in AuditLog(platform.audit_root, "churn").records()] == ["promote", "promote", "rollback"]


def test_a_decision_made_stale_by_another_promotion_moves_nothing(platform):
    """Concurrent backfill runs: a challenger decided against v1 while v2 was promoted. Nothing moves;
    a champion on newer data counts as kept, an older one leaves the decision stale; force still applies."""
    from mlops.promotion import promote

    spec = load_example("churn")
    client = tracking.client(platform)
    versions = _register_versions(platform, "churn", 5)
    ends = ["2026-01-10", "2026-01-12", "2026-01-11", "2026-01-13", "2026-01-09"]
    for version, end in zip(versions, ends, strict=True):
        client.set_model_version_tag("churn", version, tracking.INTERVAL_END, f"{end}T00:00:00+00:00")
    v1, v2, v_older, v_newer, v_forced = versions
    decision = Decision(True, "promote", ["better"])
    assert promote(platform, spec, v1, decision, None, "run-1").outcome == "promoted"
    assert promote(platform, spec, v2, decision, v1, "run-2").outcome == "promoted"

    older = promote(platform, spec, v_older, decision, v1, "run-3")
    assert older.outcome == "not_promoted" and "at least as new" in older.message
    newer = promote(platform, spec, v_newer, decision, v1, "run-4")
    assert newer.outcome == "stale" and f"v{v2} is champion now" in newer.message
    assert str(client.get_model_version_by_alias("churn", "champion").version) == v2
    assert [r.to_version for r in AuditLog(platform.audit_root, "churn").records()] == [v1, v2]

    forced = promote(platform, spec, v_forced, Decision(True, "promote", ["forced: rebuild"], forced=True), v1,
                     "run-5")
    assert forced.outcome == "promoted"
    last = AuditLog(platform.audit_root, "churn").records()[-1]
    assert last.action == "force_promote" and f"champion changed from v{v1} to v{v2}" in last.reason
