"""Sweeps through Airflow (`dag.test()`) on the embedded defaults: a real Optuna study in SQLite under the
platform's home, real trials through the training entrypoint (the warm runner's forks), a real MLflow store;
then the gates, the registry and the study are checked.

The problem's optimum is known (tests/tuning_models.py): demand's units are linear in the features plus noise of
standard deviation 4, so no model scores better than an RMSE of about 4.0, and the spec's defaults are far off.
"""

from datetime import datetime, timezone

import pytest

import tuning_models
from mlops import tracking
from mlops.settings import get_settings
from mlops.tuning import storage

D15 = datetime(2026, 1, 15, tzinfo=timezone.utc)


def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    from helpers import ROOT

    return DagBag(dag_folder=str(ROOT / "dags"))


def tries(dag_id, run_id):
    """(task_id, map_index) -> state."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as s:
        tis = s.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        return {(ti.task_id, ti.map_index): str(getattr(ti.state, "value", ti.state)) for ti in tis}


def trial_tasks(states):
    return {key: state for key, state in states.items() if key[0].startswith("trials_") and key[1] >= 0}


def study_of(name):
    import optuna

    return optuna.load_study(study_name=name, storage=storage.open_storage(get_settings().tuning.storage_url, "test"))


def sweep_runs(client, exp_id, kind):
    return client.search_runs([exp_id], filter_string=f"tags.`{tracking.KIND}` = '{kind}'", max_results=1000)


@pytest.fixture
def ridge(tmp_path, monkeypatch, airflow_db, platform):
    tuning_models.write(tmp_path, monkeypatch)
    return dag_bag()


def test_a_sweep_beats_the_defaults_retrains_the_best_through_the_gates_and_reuses_its_trials(ridge, platform):
    dr = ridge.dags["demand__tune"].test(logical_date=D15, run_conf={"trials": 8, "parallel_trials": 2})
    states = tries("demand__tune", dr.run_id)
    assert len(trial_tasks(states)) == 8 and set(trial_tasks(states).values()) == {"success"}, states
    for task in ("check_request", "validate_data", "select_best", "train", "evaluate", "promote"):
        assert states[(task, -1)] == "success", (task, states)
    assert states[("plan_5", -1)] == "skipped" and states[("plan_6", -1)] == "skipped"  # 8 trials took 4 rounds

    client = tracking.client(platform)
    champion = client.get_model_version_by_alias("demand", "champion")
    study_name = champion.tags[tracking.SWEEP_STUDY]
    study = study_of(study_name)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 8
    defaults = next(t for t in complete if t.user_attrs.get("defaults"))
    assert defaults.number == 0 and defaults.params == {"alpha": 1000.0, "weekend": False}
    best = study.best_trial
    # The known optimum: the noise's RMSE (4.0) on the validation split, reached with the weekend indicator and
    # a small penalty; the spec's defaults are more than 50 % worse.
    assert best.value < tuning_models.NOISE_RMSE * 1.06 < 1.5 * tuning_models.NOISE_RMSE < defaults.value
    assert best.params["weekend"] is True and best.params["alpha"] < 100

    # The best parameters were retrained on the full window (a version of its own, scored on the holdout), and
    # that version links its sweep and best trial.
    assert champion.tags[tracking.SWEEP_BEST_TRIAL] == str(best.number)
    train_run = client.get_run(champion.run_id)
    assert train_run.data.params["hp.alpha"] == str(best.params["alpha"])
    assert train_run.data.params["hp.weekend"] == "True"
    assert train_run.data.metrics["rmse"] < 1.1 * tuning_models.NOISE_RMSE
    exp_id = tracking.experiment_id(platform, "demand")
    (parent,) = sweep_runs(client, exp_id, "sweep")
    assert champion.tags[tracking.SWEEP_RUN] == parent.info.run_id and parent.info.status == "FINISHED"
    children = sweep_runs(client, exp_id, "trial")
    assert len(children) == 8 and {c.data.tags[tracking.PARENT_RUN] for c in children} == {parent.info.run_id}
    assert champion.tags[tracking.SWEEP_BEST_RUN] in {c.info.run_id for c in children}
    assert {c.data.params["hp.alpha"] for c in children} >= {"1000.0"}
    history = client.get_metric_history(parent.info.run_id, "best_value")
    assert [m.step for m in history] == [2, 4, 6, 8] and history[-1].value == pytest.approx(best.value)
    assert all(a.value >= b.value for a, b in zip(history, history[1:], strict=False))  # the best so far only improves
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "sweep")}
    assert artifacts == {"sweep/optimization_history.svg", "sweep/trials.json"}
    versions = client.search_model_versions("name = 'demand'")

    # The same sweep on the same data: the study already has its 8 trials, so nothing is asked or trained; the
    # retrain is the training cache's hit on the version above.
    again = ridge.dags["demand__tune"].test(logical_date=D15, run_conf={"trials": 8, "parallel_trials": 2})
    states = tries("demand__tune", again.run_id)
    assert trial_tasks(states) == {} and states[("plan_1", -1)] == "skipped", states
    assert states[("select_best", -1)] == "success" and states[("train", -1)] == "success"
    assert len(client.search_model_versions("name = 'demand'")) == len(versions)
    assert len(sweep_runs(client, exp_id, "trial")) == 8
    hits = sweep_runs(client, exp_id, "cache_hit")
    assert len(hits) == 1 and hits[0].data.tags[tracking.REUSED_RUN] == champion.run_id

    # The study lost (a new database, say): the new study asks the same parameters in the same order, and every
    # trial is the trial cache's hit (tagged, no fitting) on the runs above.
    import optuna

    optuna.delete_study(study_name=study_name, storage=storage.open_storage(platform.tuning.storage_url, "test"))
    third = ridge.dags["demand__tune"].test(logical_date=D15, run_conf={"trials": 8, "parallel_trials": 2})
    assert len(trial_tasks(tries("demand__tune", third.run_id))) == 8
    rerun = [c for c in sweep_runs(client, exp_id, "trial") if c.info.run_id not in {x.info.run_id for x in children}]
    assert len(rerun) == 8 and all(c.data.tags.get(tracking.CACHE_HIT) == "true" for c in rerun)
    assert {c.data.tags[tracking.REUSED_RUN] for c in rerun} == {c.info.run_id for c in children}
    assert study_of(study_name).best_value == pytest.approx(best.value)


def test_a_trainer_that_reports_its_epochs_has_trials_pruned_by_the_median_pruner(tmp_path, monkeypatch, airflow_db,
                                                                                  platform):
    tuning_models.write(tmp_path, monkeypatch, sgd=True)
    dr = dag_bag().dags["demand__tune"].test(logical_date=D15, run_conf={"trials": 8, "parallel_trials": 4})
    states = tries("demand__tune", dr.run_id)
    assert states[("promote", -1)] in ("success", "skipped") and states[("train", -1)] == "success", states
    client = tracking.client(platform)
    exp_id = tracking.experiment_id(platform, "demand")
    trials = sweep_runs(client, exp_id, "trial")
    pruned = [r for r in trials if r.data.tags[tracking.TRIAL_STATE] == "pruned"]
    assert pruned, [(r.data.params["hp.eta0"], r.data.metrics) for r in trials]
    for run in pruned:  # visible in MLflow: the state, and the steps it got to before it was stopped
        steps = client.get_metric_history(run.info.run_id, "val_rmse_by_step")
        assert 1 <= len(steps) < 12
    study = study_of(client.get_run(pruned[0].info.run_id).data.tags[tracking.SWEEP_STUDY])
    assert {t.state.name for t in study.trials} >= {"COMPLETE", "PRUNED"}
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials) == 8


def test_bad_requests_fail_first_naming_the_field_or_connection_and_train_nothing(ridge, platform, monkeypatch):
    from airflow.sdk.definitions.param import ParamValidationError

    dag = ridge.dags["demand__tune"]
    with pytest.raises(ParamValidationError, match="trials"):
        dag.test(logical_date=D15, run_conf={"trials": 500})  # above tuning.max_trials: the form refuses it

    dr = dag.test(logical_date=D15, run_conf={"trials": 60, "parallel_trials": 2})  # 30 rounds, the DAG has 6
    states = tries("demand__tune", dr.run_id)
    assert states[("check_request", -1)] == "failed" and states[("validate_data", -1)] == "upstream_failed"

    monkeypatch.setenv("MLOPS_TUNING_CONN_ID", "mlops_optuna")
    dr = dag.test(logical_date=D15)  # the connection does not exist
    assert tries("demand__tune", dr.run_id)[("check_request", -1)] == "failed"
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_OPTUNA", "postgres://optuna:pw@127.0.0.1:1/optuna")
    dr = dag.test(logical_date=D15)  # it exists, but nothing listens there
    assert tries("demand__tune", dr.run_id)[("check_request", -1)] == "failed"

    client = tracking.client(platform)
    assert client.search_model_versions("name = 'demand'") == []
    assert client.get_experiment_by_name("mlops/demand") is None or \
        sweep_runs(client, tracking.experiment_id(platform, "demand"), "trial") == []


def test_the_check_names_the_problems(ridge, platform, monkeypatch, caplog):
    """What check_request says for the requests above, read from its exception (what the task log shows)."""
    from airflow.sdk.exceptions import AirflowFailException

    from mlops_airflow.operators.tuning import CheckTuningRequestOperator

    spec = ridge.dags["demand__tune"].get_task("check_request").spec
    task = CheckTuningRequestOperator(task_id="check", spec=spec)

    def run(params, conf=None):
        class Run:
            pass

        dag_run = Run()
        dag_run.conf = conf or params
        with pytest.raises(AirflowFailException) as err:
            task.execute({"params": {"trials": 8, "parallel_trials": 2, "sampler": "tpe", "time_budget_minutes": 60,
                                     **params}, "dag_run": dag_run})
        return str(err.value)

    assert "take 30 rounds and this sweep has 6 (tuning.rounds); raise parallel_trials to 10" in run(
        {"trials": 60, "parallel_trials": 2})
    monkeypatch.setenv("MLOPS_TUNING_CONN_ID", "mlops_optuna")
    missing = run({})
    assert "connection 'mlops_optuna' (MLOPS_TUNING_CONN_ID) for the study storage cannot be read" in missing
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_OPTUNA", "postgres://optuna:pw@127.0.0.1:1/optuna")
    text = run({})
    assert "cannot reach the study storage from the Airflow connection 'mlops_optuna'" in text
    assert "127.0.0.1:1/optuna" in text and ":pw@" not in text


def test_trials_run_as_pods_on_the_kubernetes_backend(tmp_path, monkeypatch, airflow_db, platform):
    """The pod operators' deferrable path with a trial's arguments, against the emulated API server: the trial
    pods land on the model's pool, their results reach the study, and the retrain is a pod too."""
    from k8s_e2e import emulated_cluster, platform_pods

    tuning_models.write(tmp_path, monkeypatch)
    with emulated_cluster(tmp_path, monkeypatch, platform) as cluster:
        bag = dag_bag()
        trial = bag.dags["demand__tune"].get_task("trials_1")
        assert trial.operator_class.__name__ == "KubernetesTrialOperator"
        dr = bag.dags["demand__tune"].test(logical_date=D15, run_conf={"trials": 2, "parallel_trials": 2})
        states = tries("demand__tune", dr.run_id)
        assert set(trial_tasks(states).values()) == {"success"} and len(trial_tasks(states)) == 2, states
        assert states[("train", -1)] == "success" and states[("promote", -1)] == "success", states
        events = cluster.core_v1().list_namespaced_event("mlops").items
        scheduled = [e.message for e in events if e.reason == "Scheduled"]
        assert sum("trial-demand" in m for m in scheduled) == 2 and all("cpu-1" in m for m in scheduled), scheduled
        assert platform_pods(cluster) == []
    champion = tracking.client(platform).get_model_version_by_alias("demand", "champion")
    study = study_of(champion.tags[tracking.SWEEP_STUDY])
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert champion.tags[tracking.SWEEP_BEST_TRIAL] == str(study.best_trial.number)
