"""What tasks read from the Airflow context (a retraining request trains on the newest data; the trigger's
conf as sent), and the trigger forms it comes from: each one submits with its defaults, as Airflow's UI
decides what is required."""

import copy
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from helpers import MODELS, ROOT, load_example
from mlops_airflow.runtime import data_interval_end, trigger_conf

END = datetime(2026, 1, 15, tzinfo=timezone.utc)
EXAMPLES = sorted(p.stem for p in MODELS.glob("*.yaml"))


def test_asset_triggered_runs_take_the_newest_data_others_their_interval():
    assert data_interval_end({"dag_run": SimpleNamespace(run_type="asset_triggered"), "data_interval_end": END}) is None
    assert data_interval_end({"dag_run": SimpleNamespace(run_type="scheduled"), "data_interval_end": END}) == END
    assert data_interval_end({"data_interval_end": None}) is None


def test_the_trigger_conf_is_what_was_sent_not_the_params():
    context = {"dag_run": SimpleNamespace(conf={"hp_c": 5}), "params": {"hp_C": 1.0, "hp_c": 5}}
    assert trigger_conf(context) == {"hp_c": 5}
    assert trigger_conf({"dag_run": SimpleNamespace(conf=None)}) == {} and trigger_conf({}) == {}


def _ui_required(param) -> bool:
    """Airflow 3.3's trigger form marks a field required when its schema has a type without "null"
    (airflow/ui FlexibleForm: isRequired), and then refuses null and "" in it."""
    kind = param.schema.get("type")
    return bool(kind) and not (isinstance(kind, list) and "null" in kind)


def _unfilled_required_fields(dag) -> list[str]:
    fields = {name: dag.params.get_param(name) for name in dag.params}
    return [name for name, param in fields.items()
            if _ui_required(param) and param.resolve(suppress_exception=True) in (None, "")]


def _companions(spec):
    from mlops_airflow.builders.maintenance import build_maintenance_dag
    from mlops_airflow.builders.rollback_dag import build_rollback_dag

    return build_rollback_dag(spec, spec.tags), build_maintenance_dag([spec])


def _training_dag(name):
    from mlops.compute import catalogue_path, load_catalogue
    from mlops_airflow.builders.factory import build_training_dag

    catalogue = load_catalogue(catalogue_path(ROOT / "include" / "compute"))
    return build_training_dag(load_example(name), MODELS / f"{name}.yaml", catalogue)


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_form_submits_with_its_defaults_and_only_the_rollback_reason_is_required(name):
    from mlops.run_request import form_fields

    train = _training_dag(name)
    rollback, maintenance = _companions(load_example(name))
    assert _unfilled_required_fields(train) == [] and _unfilled_required_fields(maintenance) == []
    assert _unfilled_required_fields(rollback) == ["reason"]
    # check_request knows the form's fields: a key it calls unknown is one the form does not have.
    assert form_fields(load_example(name)) == list(train.params)
    # The defaults are a valid request for Airflow too (it validates them when the run is created).
    train.params.validate()
    _validated(rollback.params, {"reason": "v2 misbehaves"})


def test_hyperparameters_take_null_at_the_airflow_level_and_their_ranges_hold():
    from airflow.sdk.exceptions import ParamValidationError

    params = _training_dag("churn").params
    assert _validated(params, {"hp_C": None, "hp_max_iter": None})["hp_C"] is None  # check_request explains it
    for bad in ({"hp_C": -5}, {"hp_C": 0}, {"hp_max_iter": 5}):
        with pytest.raises(ParamValidationError):
            _validated(params, bad)
    nn = _training_dag("demand_nn").params
    for bad in ({"hp_learning_rate": 0}, {"hp_epochs": 0}, {"hp_weight_decay": -0.1}):
        with pytest.raises(ParamValidationError):
            _validated(nn, bad)


def _validated(params, overrides):
    params = copy.deepcopy(params)
    for key, value in overrides.items():
        params[key] = value
    return params.validate()


def _check_request(spec, conf):
    """The check_request task on a run's context: the form's defaults with the conf over them, and the conf."""
    from mlops.compute import catalogue_path, load_catalogue
    from mlops_airflow.builders.factory import _params
    from mlops_airflow.operators.request import CheckRequestOperator

    catalogue = load_catalogue(catalogue_path(ROOT / "include" / "compute"))
    params = {**{name: param.value for name, param in _params(spec, catalogue).items()}, **conf}
    context = {"params": params, "dag_run": SimpleNamespace(conf=conf)}
    return CheckRequestOperator(task_id="check_request", spec=spec, catalogue=catalogue).execute(context)


def test_check_request_fails_at_once_on_the_run_conf_and_the_trainer_references():
    from airflow.sdk.exceptions import AirflowFailException

    spec = load_example("churn")
    assert _check_request(spec, {"hp_C": 0.5})["force_promote"] is False
    typo = spec.model_copy(update={"trainer": spec.trainer.model_copy(update={"function": "trainers.churn:trian"})})
    with pytest.raises(AirflowFailException) as err:  # not retried: a retry cannot fix either
        _check_request(typo, {"hp_c": 5})
    message = str(err.value)
    assert "did you mean 'trainers.churn:train'?" in message and "did you mean 'hp_C'?" in message, message
