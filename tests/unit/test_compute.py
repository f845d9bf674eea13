import pytest
import yaml

from helpers import MODELS, ROOT
from mlops.compute import CatalogueError, effective_backend, load_catalogue
from mlops.spec import SpecError, parse_spec

CATALOGUE = ROOT / "include" / "compute" / "pools.yaml"


def spec_with(pool, gpus, backend="kubernetes"):
    data = yaml.safe_load((MODELS / "churn.yaml").read_text())
    data["compute"].update(pool=pool, gpus=gpus, backend=backend)
    return data


def test_shipped_catalogue_has_gke_gpu_pools_spot_and_cpu():
    cat = load_catalogue(CATALOGUE)
    assert {"cpu", "l4", "l4-spot", "a100", "a100-spot", "h100", "h100-spot"} <= set(cat.pools)
    for name, pool in cat.pools.items():
        if pool.spot:
            fallback = cat.pools[pool.fallback]
            assert not fallback.spot and fallback.airflow_pool == pool.airflow_pool, name
    assert cat.airflow_pools()["mlops-gpu-l4"] == 8


def test_unknown_pool_and_too_many_gpus_are_rejected_at_parse_time():
    cat = load_catalogue(CATALOGUE)
    with pytest.raises(SpecError, match=r"compute.pool: no pool 'l40' in the catalogue; use one of \['a100'"):
        parse_spec(spec_with("l40", 1), catalogue=cat)
    with pytest.raises(SpecError, match=r"3 GPUs do not fit on one node of pool 'l4' \(2 per node\)"):
        parse_spec(spec_with("l4", 3), catalogue=cat)
    with pytest.raises(SpecError, match="pool 'cpu' has no GPUs"):
        parse_spec(spec_with("cpu", 1), catalogue=cat)
    assert parse_spec(spec_with("h100-spot", 8), catalogue=cat).compute.gpus == 8


def test_fallback_must_share_the_airflow_pool(tmp_path):
    data = yaml.safe_load(CATALOGUE.read_text())
    data["pools"]["l4"]["airflow_pool"] = "somewhere-else"
    data["pools"]["a100-spot"]["fallback"] = "nope"
    path = tmp_path / "pools.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CatalogueError) as err:
        load_catalogue(path)
    text = str(err.value)
    assert "pools.l4-spot.fallback: 'l4' draws from Airflow pool 'somewhere-else', not 'mlops-gpu-l4'" in text
    assert "pools.a100-spot.fallback: no pool 'nope'" in text


def test_backend_override_from_the_environment(monkeypatch):
    assert effective_backend("local") == "local"
    monkeypatch.setenv("MLOPS_COMPUTE_BACKEND", "gke")
    assert effective_backend("local") == "gke"
    monkeypatch.setenv("MLOPS_COMPUTE_BACKEND", "k8s")
    with pytest.raises(ValueError, match="MLOPS_COMPUTE_BACKEND='k8s' is not one of"):
        effective_backend("local")


def test_specs_the_catalogue_and_run_requests_report_their_problems_alike():
    from mlops.problems import ProblemsError
    from mlops.run_request import RunRequestError

    errors = [SpecError("churn.yaml", ["a: x", "b: y"]), CatalogueError("pools.yaml", ["a: x", "b: y"]),
              RunRequestError("churn", ["a: x", "b: y"])]
    for err in errors:
        assert isinstance(err, ProblemsError) and isinstance(err, ValueError)
        assert err.problems == ["a: x", "b: y"]
        assert str(err) == f"{err.header}:\n  - a: x\n  - b: y"
    assert [e.header for e in errors] == ["churn.yaml: 2 problem(s) in the model spec",
                                          "pools.yaml: 2 problem(s) in the pool catalogue",
                                          "churn: this run's request cannot be carried out; nothing was changed"]
    assert (errors[0].path, errors[1].path, errors[2].model) == ("churn.yaml", "pools.yaml", "churn")
