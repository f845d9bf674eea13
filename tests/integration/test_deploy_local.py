"""Online serving on the local backend, end to end through `churn__deploy` (`dag.test()`), with a real MLflow
store and MLflow's scoring server processes under the platform's supervisor.

A client loop sends requests to the model's stable address through every rollout and rollback and must see
no failed request. Versions are trained by the real trainer entrypoint (`run_training`), some with a fault that
only shows in the serving environment (tests/churn_variants.py): a crash at start, scores that differ from the
offline ones, and a model too slow for the p99 guardrail."""

from __future__ import annotations

import os
import time

import pytest

import churn_variants
from deploy_helpers import STEPS, ClientLoop, _alias, _one_row, _status, deploy
from helpers import ROOT

SERVING = {"replicas": 2, "timeouts": {"ready_seconds": 60, "request_seconds": 5, "drain_seconds": 5},
           "smoke": {"rows": 40, "tolerance": 1e-6}, "canary": {"requests": 60},
           # a p99 far above a one-row request's (5-10 ms here; 100+ under a loaded CI), far below the slow one's
           "guardrails": {"max_error_rate": 0.0, "max_p99_ms": 500, "max_psi": 0.5, "max_disagreement": 0.2}}
VERSIONS = {"good": "", "better": "", "crash": "crash", "offset": "offset", "slow": "slow:1200",
            "half": "second-replica-crash:{tmp}/second-replica.marker"}


@pytest.fixture(scope="module")
def served(airflow_db, sample_data_root, tmp_path_factory):
    """churn with a serving section, five trained versions, and the deploy DAG; the supervisor and every
    server process are stopped at the end, and that they are gone is checked."""
    from airflow.dag_processing.dagbag import DagBag

    from mlops.serving import control
    from mlops.settings import get_settings
    from mlops.spec import load_spec
    from mlops.train import RunContext, run_training

    tmp = tmp_path_factory.mktemp("deploy")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(tmp / "platform"))
        mp.setenv("MLOPS_DATA_ROOT", str(sample_data_root))
        mp.setenv("MLFLOW_TRACKING_URI", "")
        mp.delenv("MLFLOW_TRACKING_URI")
        churn_variants.serving(tmp, mp, SERVING)
        settings = get_settings()
        spec = load_spec(tmp / "models" / "churn.yaml", settings.expectations_dir)
        versions = {}
        for i, (name, fault) in enumerate(VERSIONS.items()):
            ctx = RunContext("churn__train", f"train-{name}", None, None, f"2026-01-{15 + i}T00:00:00+00:00", 1,
                             None, None, None)
            params = {churn_variants.SERVE_FAULT: fault.format(tmp=tmp), "C": 1.0 - 0.1 * i}
            versions[name] = run_training(spec, ctx, params, settings)["model_version"]
        bag = DagBag(dag_folder=str(ROOT / "dags"))
        assert "churn__deploy" in bag.dags, bag.import_errors
        try:
            yield {"bag": bag, "settings": settings, "spec": spec, "versions": versions}
        finally:
            sup = control.find(settings.serving.dir)
            pids = [p["pid"] for m in (sup.status()["models"].values() if sup else []) for p in m["processes"]]
            control.stop(settings.serving.dir)
            left = [pid for pid in pids + ([sup.pid] if sup else []) if control._alive(pid)]
            assert not left, f"processes left running after the tests: {left}"



def test_deploy_then_roll_out_with_no_failed_request(served):
    from mlops.audit import AuditLog
    from mlops.serving.records import RolloutLog

    v1, v2 = served["versions"]["good"], served["versions"]["better"]
    _, states = deploy(served, v1, "first deploy")
    assert states == {**dict.fromkeys(STEPS, "success"), "roll_back": "skipped"}, states
    first = _status(served)
    assert first["deployed"] == f"v{v1}" and first["serving"] == f"v{v1}" and first["ready"] == "2/2", first

    with ClientLoop(first["endpoint"], _one_row(served)) as loop:
        time.sleep(0.5)
        _, states = deploy(served, v2, "a better model")
        time.sleep(0.5)
    assert states == {**dict.fromkeys(STEPS, "success"), "roll_back": "skipped"}, states
    assert loop.failures == [], loop.failures[:5]
    assert loop.answers[v1] > 0 and loop.answers[v2] > 0, loop.answers  # both versions answered during it

    now = _status(served)
    assert now["endpoint"] == first["endpoint"]  # the same address throughout
    assert now["deployed"] == f"v{v2}" and now["serving"] == f"v{v2}" and now["ready"] == "2/2", now
    assert _alias(served, "deployed") == v2 and _alias(served, "previous-deployed") == v1
    record = AuditLog(served["settings"].audit_root, "churn").last_for_alias("deployed")
    assert (record.from_version, record.to_version, record.action) == (v1, v2, "deploy")
    bake = record.evidence["bake"]
    assert bake["requests"] == SERVING["canary"]["requests"] and bake["errors"] == 0 and bake["passed"]
    assert set(bake["versions_answered"]) == {v1, v2}  # shadow: both versions scored the same rows
    assert bake["psi"] is not None and bake["disagreement"] is not None
    assert record.evidence["smoke"]["mismatched_rows"] == 0
    rollout = RolloutLog(served["settings"].audit_root, "churn").latest()
    assert rollout.verdict == "deployed" and [s["step"] for s in rollout.steps] == [
        "resolve", "start", "smoke", "bake", "switch", "record", "retire"]
    # what v1 cost while it served: its replicas from its own rollout's end to this one's
    retired = rollout.retired_usage
    assert retired["version"] == v1 and retired["replicas"] == SERVING["replicas"] and retired["replica_hours"] > 0

    # deploying the version that serves changes nothing
    _, states = deploy(served, v2, "again")
    assert states["resolve_version"] == "skipped" and set(states.values()) == {"skipped"}, states
    assert _alias(served, "deployed") == v2 and len(RolloutLog(served["settings"].audit_root, "churn").all()) == 2


@pytest.mark.parametrize("bad, step, words", [
    ("crash", "start_candidate", ["crashed at start", "cannot load in the serving environment"]),
    # its first replica takes live connections on the shared socket before the second one crashes: rolling
    # back must drain it, not kill it under the clients' requests
    ("half", "switch_traffic", ["replica 2 of 2", "crashed at start", "the second replica cannot load"]),
    ("offset", "smoke_test", ["score differently online than offline", "tolerance"]),
    ("slow", "canary_bake", ["p99 latency", "> max 500 ms"]),
])
def test_bad_candidate_rolls_back_while_the_stable_version_serves(served, bad, step, words):
    from mlops.serving.records import RolloutLog

    if _alias(served, "deployed") is None:  # run on its own: deploy a good version first
        deploy(served, served["versions"]["good"], "the stable version")
    before = _status(served)
    stable = _alias(served, "deployed")
    assert stable is not None and before["ready"] == "2/2", before
    version = served["versions"][bad]
    with ClientLoop(before["endpoint"], _one_row(served)) as loop:
        dr, states = deploy(served, version, f"{bad} candidate")
    assert str(getattr(dr.state, "value", dr.state)) == "failed"
    assert states[step] == "failed" and states["roll_back"] == "success", states
    # only the stable version answers, except a rollout that had begun its switch: then the new version
    # answered some requests too before it was drained away
    allowed = {stable, version} if step == "switch_traffic" else {stable}
    assert loop.failures == [] and stable in loop.answers and set(loop.answers) <= allowed, (loop.failures[:5],
                                                                                              loop.answers)

    rollout = RolloutLog(served["settings"].audit_root, "churn").latest()
    assert rollout.to_version == version and rollout.verdict == "rolled_back"
    reason = rollout.failure["reason"]
    assert all(w in reason for w in words), reason
    after = _status(served)
    assert _alias(served, "deployed") == stable and after["serving"] == f"v{stable}" and after["ready"] == "2/2"
    from mlops.serving import control

    left = [p for p in control.find(served["settings"].serving.dir).model("churn")["processes"]
            if p["version"] == version]
    assert left == [], left  # nothing of the bad candidate is left


def test_moving_the_endpoint_back_is_a_deploy_of_the_previous_version(served):
    from mlops.audit import AuditLog

    if _alias(served, "previous-deployed") is None:  # run on its own: two deploys first
        deploy(served, served["versions"]["good"])
        deploy(served, served["versions"]["better"])
    back_to, leaving = _alias(served, "previous-deployed"), _alias(served, "deployed")
    with ClientLoop(_status(served)["endpoint"], _one_row(served)) as loop:
        _, states = deploy(served, back_to, "v-next mis-scores a segment")
    assert states == {**dict.fromkeys(STEPS, "success"), "roll_back": "skipped"}, states
    assert loop.failures == [] and set(loop.answers) == {leaving, back_to}, (loop.failures[:5], loop.answers)
    assert (_alias(served, "deployed"), _alias(served, "previous-deployed")) == (back_to, leaving)
    record = AuditLog(served["settings"].audit_root, "churn").last_for_alias("deployed")
    assert (record.action, record.from_version, record.to_version) == ("deploy_rollback", leaving, back_to)
    assert record.reason == "v-next mis-scores a segment" and " via airflow:churn__deploy/" in record.actor


def test_a_replica_that_dies_is_restarted_by_the_supervisor(served):
    import signal

    from mlops.serving import control

    sup = control.find(served["settings"].serving.dir)
    if sup is None or _status(served)["ready"] != "2/2":
        deploy(served, served["versions"]["good"])
        sup = control.find(served["settings"].serving.dir)
    victim = next(p for p in sup.model("churn")["processes"] if p["role"] == "stable")
    os.kill(victim["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        procs = [p for p in sup.model("churn")["processes"] if p["role"] == "stable"]
        if _status(served)["ready"] == "2/2" and victim["pid"] not in [p["pid"] for p in procs]:
            break
        time.sleep(0.5)
    restarted = next(p for p in sup.model("churn")["processes"] if p["private_url"] == victim["private_url"])
    assert restarted["pid"] != victim["pid"] and restarted["restarts"] == 1 and restarted["alive"]
    assert _status(served)["ready"] == "2/2"
