"""Rules across the trigger form's fields, on plain values: every problem at once, each with its fix."""

import pytest

from helpers import ROOT, load_example
from mlops.compute import allowed_pools, load_catalogue
from mlops.run_request import RunRequestError, training_request

CATALOGUE = load_catalogue(ROOT / "include" / "compute" / "pools.yaml")


def test_defaults_are_a_valid_request():
    request = training_request(load_example("churn"), CATALOGUE, {})
    assert request == {"force_promote": False, "force_reason": None, "compute_pool": "cpu", "pool_overridden": False}


def test_force_needs_a_reason_and_a_reason_needs_force():
    spec = load_example("churn")
    with pytest.raises(RunRequestError, match="force_reason is empty"):
        training_request(spec, CATALOGUE, {"force_promote": True, "force_reason": "  "})
    with pytest.raises(RunRequestError, match="force_promote is not ticked"):
        training_request(spec, CATALOGUE, {"force_reason": "rebuild"})
    ok = training_request(spec, CATALOGUE, {"force_promote": True, "force_reason": " incident 7 "})
    assert ok["force_reason"] == "incident 7"


def test_force_is_refused_where_the_spec_switches_it_off():
    spec = load_example("churn")
    locked = spec.model_copy(update={"promotion": spec.promotion.model_copy(update={"allow_force": False})})
    with pytest.raises(RunRequestError, match="allow_force: false"):
        training_request(locked, CATALOGUE, {"force_promote": True, "force_reason": "please"})


def test_pools_a_model_may_use_share_its_quota_and_fit_its_gpus():
    assert allowed_pools(CATALOGUE, "l4", 1) == ["l4", "l4-spot"]
    assert allowed_pools(CATALOGUE, "cpu", 0) == ["cpu"]
    gpu_model = load_example("demand_nn")
    assert training_request(gpu_model, CATALOGUE, {"compute_pool": "l4-spot"})["pool_overridden"] is True
    with pytest.raises(RunRequestError) as err:
        training_request(gpu_model, CATALOGUE, {"compute_pool": "a100", "force_promote": True})
    # Both problems in one message, each with what to do.
    assert len(err.value.problems) == 2
    assert "mlops-gpu-a100" in str(err.value) and "may use ['l4', 'l4-spot']" in str(err.value)
    with pytest.raises(RunRequestError, match="has no GPUs"):
        training_request(gpu_model, CATALOGUE, {"compute_pool": "cpu"})


def test_cleared_form_fields_arrive_as_none_and_are_a_valid_request():
    # What the trigger form sends for a training run with its defaults: the optional reason is null.
    spec = load_example("churn")
    conf = {"hp_C": 1.0, "hp_max_iter": 300, "compute_pool": "cpu", "force_promote": False, "force_reason": None}
    request = training_request(spec, CATALOGUE, conf, conf=conf)
    assert request == {"force_promote": False, "force_reason": None, "compute_pool": "cpu", "pool_overridden": False}
    with pytest.raises(RunRequestError, match="force_reason is empty"):
        training_request(spec, CATALOGUE, {"force_promote": True, "force_reason": None})
    forced = training_request(spec, CATALOGUE, {"force_promote": True, "force_reason": "incident 7"})
    assert forced["force_reason"] == "incident 7"


def test_unknown_conf_keys_are_refused_naming_the_nearest_field():
    spec = load_example("churn")
    with pytest.raises(RunRequestError) as err:
        training_request(spec, CATALOGUE, {"hp_c": 5}, conf={"hp_c": 5, "max_iter": 50, "colour": "blue"})
    problems = err.value.problems
    assert len(problems) == 3, problems
    assert any(p.startswith("hp_c:") and "did you mean 'hp_C'?" in p for p in problems), problems
    # A hyperparameter without its prefix is named with it.
    assert any(p.startswith("max_iter:") and "did you mean 'hp_max_iter'?" in p for p in problems), problems
    # Nothing near: the fields there are.
    (colour,) = [p for p in problems if p.startswith("colour:")]
    assert "hp_C, hp_max_iter, compute_pool, force_promote, force_reason" in colour and "remove it" in colour


@pytest.mark.parametrize("value, shown", [(None, "null"), (float("nan"), "NaN"), (float("inf"), "Infinity")])
def test_a_hyperparameter_that_needs_a_number_refuses_null_and_non_finite_values(value, shown):
    spec = load_example("churn")
    with pytest.raises(RunRequestError) as err:
        training_request(spec, CATALOGUE, {"hp_C": value})
    (problem,) = err.value.problems
    assert problem.startswith(f"hp_C: {shown} arrived where a number is needed"), problem
    assert "NaN, Infinity and numbers out of range (like 1e400) arrive as null" in problem, problem
    assert "the spec's value is 1.0" in problem and "or leave hp_C out" in problem, problem


def test_every_problem_is_reported_at_once():
    spec = load_example("churn")
    conf = {"hp_c": 5, "hp_max_iter": None, "force_reason": "why not"}
    with pytest.raises(RunRequestError) as err:
        training_request(spec, CATALOGUE, {**conf, "hp_C": 1.0}, conf=conf)
    assert [p.split(":")[0] for p in err.value.problems] == ["hp_c", "hp_max_iter", "force_reason is filled in but "
                                                              "force_promote is not ticked"], err.value.problems


def test_a_trainer_reference_that_does_not_resolve_is_refused_with_the_nearest_name():
    spec = load_example("demand")
    typo = spec.model_copy(update={"trainer": spec.trainer.model_copy(update={"predict": "trainers.demand:predcit"})})
    with pytest.raises(RunRequestError) as err:
        training_request(typo, CATALOGUE, {})
    (problem,) = err.value.problems
    assert problem.startswith("trainer.predict:") and "did you mean 'trainers.demand:predict'?" in problem, problem
