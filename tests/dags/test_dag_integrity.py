"""DAG integrity: the dags/ folder parses cleanly and cheaply, every DAG follows the platform's rules,
and a broken spec shows up as its own failing DAG without taking the others down."""

import shutil
import subprocess
import sys

import pytest

from helpers import MODELS, ROOT

HEAVY = ("great_expectations", "mlflow", "sklearn", "pandas", "numpy", "torch")


def test_no_import_errors_and_one_dag_per_spec(dagbag):
    bag = dagbag
    assert bag.import_errors == {}
    from mlops.spec import load_spec

    optional = {"deploy": lambda spec: spec.serving is not None, "tune": lambda spec: spec.tuning is not None}
    per_model = [f"{p.stem}__{kind}" for p in MODELS.glob("*.yaml")
                 for kind in ("train", "score", "monitor", "rollback", "deploy", "tune")
                 if kind not in optional or optional[kind](load_spec(p))]
    assert "churn__deploy" in per_model and "demand_nn__deploy" not in per_model
    assert "demand__tune" in per_model and "churn__tune" not in per_model
    assert sorted(bag.dags) == sorted([*per_model, "mlops__maintenance"])


def test_every_dag_has_owner_tags_retries_and_docs(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags and "mlops" in dag.tags, dag_id
        assert dag.doc_md, dag_id
        if dag_id.endswith("__rollback"):  # a user's one-off action: it fails loudly rather than retrying
            assert [t.task_id for t in dag.tasks] == ["rollback"] and dag.get_task("rollback").retries == 0
            assert dag.get_task("rollback").outlets and dag.max_active_runs == 1
            continue
        if dag_id.endswith("__deploy"):  # a failed gate is the verdict: roll back, never retry the step
            steps = ["resolve_version", "start_candidate", "smoke_test", "canary_bake", "switch_traffic",
                     "record_deployment", "retire_old_version"]
            assert [t.task_id for t in dag.topological_sort() if t.task_id != "roll_back"] == steps
            # a gate's verdict does not change on a second try; retire is idempotent and retried
            assert {t.task_id: t.retries for t in dag.tasks if t.retries} == {"retire_old_version": 2}
            assert dag.max_active_runs == 1
            assert dag.get_task("roll_back").trigger_rule == "one_failed"
            model = dag_id.removesuffix("__deploy")  # takes turns with the model's promotions:
            assert dag.get_task("record_deployment").pool == f"mlops-promotion-{model}"
            continue
        assert "retries" in dag.default_args, dag_id
        assert dag.default_args["retries"] >= 1, dag_id
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id} has no owner"
        if dag_id == "mlops__maintenance":
            assert {t.task_id for t in dag.tasks} == {"sync_pools", "reap_orphan_pods"}
            continue
        if dag_id.endswith("__score"):
            assert [t.task_id for t in dag.tasks] == ["score"]
            continue
        if dag_id.endswith("__tune"):  # rounds of plan -> mapped trials -> tell, then the training run's own gates
            order = [t.task_id for t in dag.topological_sort()]
            rounds = dag.get_task("check_request").spec.tuning.rounds
            per_round = [name for k in range(1, rounds + 1) for name in (f"plan_{k}", f"trials_{k}", f"tell_{k}")]
            assert order == ["check_request", "validate_data", *per_round, "select_best", "train", "evaluate",
                             "promote"], order
            assert dag.get_task("trials_1").map_index_template == "{{ trial_label }}"
            assert dag.get_task("tell_1").trigger_rule == "all_done"
            assert dag.get_task("select_best").trigger_rule == "none_failed"
            assert dag.get_task("train").retries == dag.default_args["retries"]
            assert dag.max_active_runs == 1
            continue
        if dag_id.endswith("__monitor"):
            assert [t.task_id for t in dag.topological_sort()] == ["validate_batch", "check", "request_retraining"]
            assert dag.get_task("request_retraining").outlets  # the retraining Asset
            continue
        # Data does not fix itself: validation retries only to wait for a late newest partition.
        assert dag.get_task("validate_data").retries == 3
        assert dag.get_task("train").retries == dag.default_args["retries"]
        assert [t.task_id for t in dag.topological_sort()] == ["check_request", "validate_data", "train", "evaluate",
                                                               "promote"]


def test_trigger_form_has_typed_params(dagbag):
    dag = dagbag.dags["churn__train"]
    params = dag.params
    assert params["hp_C"] == 1.0 and params.get_param("hp_C").schema["type"] == ["null", "number"]
    assert params.get_param("force_promote").schema["type"] == "boolean"
    assert "force_reason" in params
    schema = params.get_param("hp_max_iter").schema
    assert (schema["type"], schema["minimum"], schema["maximum"]) == (["null", "integer"], 10, 10000)
    pool = params.get_param("compute_pool")
    assert pool.value == "cpu" and "l4" in pool.schema["enum"] and "may use cpu:" in pool.description


def test_trigger_form_refuses_values_out_of_bounds(dagbag):
    from airflow.sdk.exceptions import ParamValidationError

    bag = dagbag
    demand = bag.dags["demand__train"].params
    for bad in ({"hp_max_depth": 0}, {"hp_n_estimators": 5000}, {"compute_pool": "nonexistent"}):
        with pytest.raises(ParamValidationError):
            _validated(demand, bad)
    rollback = bag.dags["demand__rollback"].params
    with pytest.raises(ParamValidationError):
        _validated(rollback, {"to_version": "three", "reason": "bad model"})
    _validated(rollback, {"to_version": "", "reason": "bad model"})


def _validated(params, overrides):
    import copy

    params = copy.deepcopy(params)
    for key, value in overrides.items():
        params[key] = value
    return params.validate()


def test_parsing_imports_nothing_heavy():
    code = (
        "import sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(ROOT / 'dags')!r})\n"
        "assert not bag.import_errors, bag.import_errors\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_broken_spec_becomes_a_failing_dag_and_others_still_load(broken_dagbag):
    bag = broken_dagbag
    assert bag.import_errors == {}
    assert {"churn__train", "demand__train", "churn_broken__train", "garbage__train"} <= set(bag.dags)
    broken = bag.dags["churn_broken__train"]
    assert "broken-spec" in broken.tags
    assert "evaluation.primary_metric: 'accuracy_typo'" in broken.doc_md
    assert [t.task_id for t in broken.tasks] == ["spec_error"]
    assert "line" in bag.dags["garbage__train"].doc_md
    assert len(bag.dags["churn__train"].tasks) == 5


def test_broken_spec_dag_refuses_to_run(broken_dagbag, models_with_a_broken_spec, monkeypatch, airflow_db):
    bag = broken_dagbag
    monkeypatch.setenv("MLOPS_MODELS_DIR", str(models_with_a_broken_spec))  # dag.test() parses the folder again
    dr = bag.dags["churn_broken__train"].test()
    assert str(dr.state) in ("failed", "DagRunState.FAILED")


def test_one_bad_spec_of_any_kind_never_hides_the_others(tmp_path, parse_dags):
    models = tmp_path / "models"
    shutil.copytree(MODELS, models)
    text = (MODELS / "demand.yaml").read_text()
    (models / "demand_cron.yaml").write_text(
        text.replace("name: demand", "name: demand_cron").replace('schedule: "@daily"', 'schedule: "99 99 * * *"'))
    (models / "demand_nullhp.yaml").write_text(
        text.replace("name: demand", "name: demand_nullhp").replace("max_depth: 8", "max_depth: null"))
    bag = parse_dags(MLOPS_MODELS_DIR=models)
    assert bag.import_errors == {}
    assert "broken-spec" in bag.dags["demand_cron__train"].tags
    assert "schedule: '99 99 * * *'" in bag.dags["demand_cron__train"].doc_md
    nullhp = bag.dags["demand_nullhp__train"]
    assert "broken-spec" not in nullhp.tags and nullhp.params["hp_max_depth"] is None
    assert len(bag.dags["churn__train"].tasks) == 5


def test_training_runs_on_its_schedule_or_when_the_monitor_asks(dagbag):
    bag = dagbag
    train, monitor = bag.dags["churn__train"], bag.dags["churn__monitor"]
    (requested,) = monitor.get_task("request_retraining").outlets
    assert type(train.timetable).__name__ == "AssetOrTimeSchedule"
    assert requested.uri == "mlops://models/churn/retrain-requested"
    assert requested.uri in repr(train.timetable.asset_condition)


def test_every_pool_a_task_takes_is_one_pools_sync_creates(dagbag):
    """A task whose pool does not exist is never queued (Airflow 3.3's scheduler leaves it scheduled and only
    logs a warning), so a DAG may name only default_pool or a pool `python -m mlops_airflow.pools sync` makes;
    the promote and rollback tasks of a model take its one-slot promotion pool, so they never run at once."""
    from mlops.locks import promotion_pool
    from mlops_airflow.pools import desired_pools

    bag, synced = dagbag, desired_pools()
    missing = {f"{dag_id}.{task.task_id}": task.pool for dag_id, dag in bag.dags.items() for task in dag.tasks
               if task.pool != "default_pool" and task.pool not in synced}
    assert not missing, f"tasks in pools that `pools sync` does not create: {missing}"
    for model in (p.stem for p in MODELS.glob("*.yaml")):
        pool = promotion_pool(model)
        assert synced[pool][0] == 1, synced[pool]
        for dag_id, task_id in ((f"{model}__train", "promote"), (f"{model}__rollback", "rollback")):
            task = bag.dags[dag_id].get_task(task_id)
            assert (task.pool, task.pool_slots) == (pool, 1), f"{dag_id}.{task_id} is in {task.pool}"
