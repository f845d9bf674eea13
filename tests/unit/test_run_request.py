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
