"""The serving pieces that need no server: the spec section, the bake's judgement, the response headers the
worker adds, the readiness wording, the rollout record and the mails. The servers themselves are exercised
end to end in tests/integration/test_deploy_local.py."""

from __future__ import annotations

import asyncio

import pytest
import yaml

from helpers import MODELS
from mlops.compute import catalogue_path, load_catalogue
from mlops.spec import SpecError, parse_spec
from mlops.spec.serving import Serving, ServingGuardrails


def churn_with(serving) -> dict:
    data = yaml.safe_load((MODELS / "churn.yaml").read_text())
    data["serving"] = serving
    return data


def test_without_a_section_there_is_no_deploy():
    data = churn_with(None)
    del data["serving"]
    assert parse_spec(data).serving is None


def test_defaults_are_safe():
    s = Serving()
    assert (s.backend, s.replicas, s.deployed_alias, s.previous_alias) == ("local", 1, "deployed", "previous-deployed")
    assert s.guardrails.max_error_rate == 0 and s.smoke.rows == 50 and s.canary.requests == 200


def test_every_serving_problem_is_reported_at_once():
    catalogue = load_catalogue(catalogue_path(MODELS.parent / "compute"))
    data = churn_with({"backend": "seldon", "replicas": 0, "resources": {"memory": "lots"},
                       "guardrails": {"max_error_rate": 2}, "canary": {"requests": -1}, "smoke": {"tolrance": 1}})
    with pytest.raises(SpecError) as err:
        parse_spec(data, "churn.yaml", catalogue=catalogue)
    text = "\n".join(err.value.problems)
    for field in ("serving.backend", "serving.replicas", "serving.resources.memory",
                  "serving.guardrails.max_error_rate", "serving.canary.requests", "serving.smoke.tolrance"):
        assert field in text, (field, text)
    assert "'lots' is not a Kubernetes quantity" in text


def test_cross_checks_name_the_field_and_the_fix():
    catalogue = load_catalogue(catalogue_path(MODELS.parent / "compute"))
    with pytest.raises(SpecError) as err:
        parse_spec(churn_with({"deployed_alias": "champion", "pool": "cpu", "gpus": 1}), catalogue=catalogue)
    text = "\n".join(err.value.problems)
    assert "serving.deployed_alias: 'champion' is also a promotion alias" in text
    assert "serving.gpus: pool 'cpu' has no GPUs" in text
    with pytest.raises(SpecError, match="serving.pool: no pool 'nowhere'"):
        parse_spec(churn_with({"pool": "nowhere"}), catalogue=catalogue)
    with pytest.raises(SpecError, match="previous_alias must differ from deployed_alias"):
        parse_spec(churn_with({"previous_alias": "deployed"}))


def test_serving_settings_do_not_change_what_is_trained():
    assert parse_spec(churn_with({"replicas": 3})).content_hash() == parse_spec(churn_with(None)).content_hash()


# --- the bake's judgement -------------------------------------------------------------------------------

def test_judge_names_each_broken_guardrail():
    from mlops.serving.bake import BakeReport, judge

    report = BakeReport(requests=100, errors=2, p50_ms=10, p99_ms=900, psi=0.4, disagreement=0.2,
                        first_error="HTTP 500: boom")
    judge(report, ServingGuardrails(max_error_rate=0.01, max_p99_ms=500, max_psi=0.2, max_disagreement=0.05))
    text = "\n".join(report.failures)
    assert not report.passed and len(report.failures) == 4
    assert "error rate 2.00% > max 1.00% (2 of 100 requests failed; first: HTTP 500: boom)" in text
    assert "p99 latency 900.0 ms > max 500 ms" in text
    assert "PSI 0.4000 against the stable version > max 0.2" in text
    assert "20.00% of rows change class" in text

    fine = BakeReport(requests=100, p50_ms=5, p99_ms=9, psi=0.01, disagreement=0.0)
    judge(fine, ServingGuardrails())
    assert fine.passed and fine.to_dict()["passed"] is True


def test_the_bake_stops_once_a_guardrail_cannot_be_met():
    import numpy as np

    from mlops.serving.bake import _already_broken

    g = ServingGuardrails(max_error_rate=0.05, max_p99_ms=100)
    assert not _already_broken(errors=5, slow=0, planned=100, g=g)  # 5% is allowed
    assert _already_broken(errors=6, slow=0, planned=100, g=g)
    # stopped exactly when the final p99 can no longer stay under the limit, and not before
    for planned in (60, 100, 200, 300):
        needed = next(n for n in range(1, planned) if _already_broken(0, n, planned, g))
        fast, slow = [1.0] * planned, 1e6
        assert np.percentile(fast[:planned - needed] + [slow] * needed, 99) > 100 * 1000  # on a slow one
        # one fewer, each just over the limit: the bake can still pass
        assert np.percentile(fast[:planned - needed + 1] + [101.0] * (needed - 1), 99) <= 100
    assert [next(n for n in range(1, p) if _already_broken(0, n, p, g)) for p in (60, 100, 200)] == [2, 2, 3]


def test_score_shift_is_zero_for_the_same_scores_and_grows_with_a_shift():
    import numpy as np

    from mlops.serving.bake import score_shift

    rng = np.random.default_rng(1)
    scores = list(rng.uniform(0, 1, 500))
    psi, disagreement = score_shift(scores, scores, binary=True)
    assert psi == pytest.approx(0, abs=1e-9) and disagreement == 0
    shifted = [min(1.0, s + 0.3) for s in scores]
    psi_shifted, disagreement_shifted = score_shift(scores, shifted, binary=True)
    assert psi_shifted > 0.5 and 0.2 < disagreement_shifted < 0.4
    assert score_shift(scores[:5], scores[:5], binary=False) == (None, None)  # too few rows to say anything
    assert score_shift(scores, shifted, binary=False)[1] is None  # no classes in a regression


# --- the server process and its readiness -----------------------------------------------------------------

def test_worker_adds_model_and_version_to_every_response():
    from mlops.serving.worker import with_version_headers

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})

    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request"}

    asyncio.run(with_version_headers(app, "churn", "7")({"type": "http"}, receive, send))
    headers = dict(sent[0]["headers"])
    assert headers[b"x-mlops-model"] == b"churn" and headers[b"x-mlops-model-version"] == b"7"
    assert headers[b"content-type"] == b"application/json" and sent[1]["body"] == b"{}"


@pytest.mark.parametrize("code, words", [(-9, "out of memory"), (1, "crashed at start (exit code 1)"),
                                         (-15, "killed by signal 15")])
def test_a_server_that_dies_is_explained(code, words):
    from mlops.serving.endpoint import exit_reason

    text = exit_reason(code, ["Traceback (most recent call last):", "ModuleNotFoundError: No module named 'x'"])
    assert words in text and "  | ModuleNotFoundError: No module named 'x'" in text


def test_frame_body_is_mlflow_dataframe_split_with_null_for_nan():
    import json

    import pandas as pd

    from mlops.serving.endpoint import frame_body

    body = json.loads(frame_body(pd.DataFrame({"a": [1.5, float("nan")], "b": ["x", "y"]})))
    assert body == {"dataframe_split": {"columns": ["a", "b"], "data": [[1.5, "x"], [None, "y"]]}}


# --- records and mails ------------------------------------------------------------------------------------

def test_rollout_record_is_updated_in_place_and_a_retried_step_replaces_its_entry(tmp_path):
    from mlops.serving.records import Rollout, RolloutLog, rollout_id

    log = RolloutLog(str(tmp_path), "churn")
    rid = rollout_id("churn", "airflow:churn__deploy/run-1")
    assert rid == rollout_id("churn", "airflow:churn__deploy/run-1") != rollout_id("churn", "other")
    r = log.save(Rollout(rid, "churn", "local", "1", "2", "me", "why"))
    r.step("start", 1.0, "failed")
    r.step("start", 2.5, "ready")
    log.save(r)
    (found,) = log.all()
    assert found.id == rid and [s["step"] for s in found.steps] == ["start"] and found.steps[0]["seconds"] == 2.5
    assert log.latest().timeline() == "start 2.5 s"
    later = log.save(Rollout("b" * 12, "churn", "local", "2", "3", "me", "why", started="9999-01-01T00:00:00+00:00"))
    assert log.latest().id == later.id


def test_mails_for_a_rollout_and_a_roll_back_carry_the_gates_figures():
    from mlops import notifications as messages

    task = messages.TaskRef("churn__deploy", "retire_old_version", "manual__1")
    bake = {"requests": 200, "error_rate": 0.0, "p50_ms": 4.2, "p99_ms": 9.9, "psi": 0.02, "disagreement": 0.01,
            "failures": []}
    done = messages.deployed("churn", task, {"to_version": "3", "from_version": "2", "endpoint": "http://h:1",
                                             "bake": bake, "smoke": {"rows": 50, "max_abs_diff": 0.0,
                                                                     "tolerance": 1e-6}, "timeline": "start 2.1 s"})
    assert done.subject == "[mlops] churn: v3 deployed (was v2)"
    body = "\n".join(done.lines)
    assert "v3 serves at http://h:1 (replacing v2)" in body and "PSI 0.0200" in body and "p99 9.9 ms" in body
    failed = messages.deploy_rolled_back("churn", task, {
        "to_version": "4", "failure": {"step": "smoke", "reason": "3 of 50 rows score differently"},
        "serving": ["3"], "message": "churn: the rollout of v4 failed at smoke and was rolled back"})
    assert failed.subject == "[mlops] churn: rollout of v4 rolled back (smoke)"
    assert "Why: 3 of 50 rows score differently" in failed.lines and "Serving now: v3" in failed.lines


def test_a_draining_worker_asks_keep_alive_clients_to_reconnect_elsewhere():
    from mlops.serving.worker import with_version_headers

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    draining = {"now": False}
    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request"}

    wrapped = with_version_headers(app, "churn", "7", lambda: draining["now"])
    asyncio.run(wrapped({"type": "http"}, receive, send))
    draining["now"] = True
    asyncio.run(wrapped({"type": "http"}, receive, send))
    assert b"connection" not in dict(sent[0]["headers"]) and dict(sent[2]["headers"])[b"connection"] == b"close"


@pytest.mark.parametrize("executor, ok", [("LocalExecutor", True), ("SequentialExecutor", True),
                                          ("airflow.executors.local_executor.LocalExecutor", True),
                                          ("CeleryExecutor", False), ("KubernetesExecutor", False),
                                          ("LocalExecutor,CeleryExecutor", False)])
def test_the_local_backend_refuses_executors_that_spread_a_run_over_machines(executor, ok):
    from mlops_airflow.operators.deploy import local_backend_problem

    problem = local_backend_problem(executor)
    assert (problem is None) == ok, problem
    if not ok:
        assert "LocalExecutor" in problem and repr(executor) in problem
