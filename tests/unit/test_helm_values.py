"""The Helm values (deploy/helm) against the official Airflow chart's own values.schema.json, the file Helm
checks values with before it renders anything: an unknown or misspelt key, or a value of the wrong type, fails
here instead of at `helm install`. The schema is the chart's own file, which this repository does not
redistribute: tests/data/helm/README.md says which revision, and where the tests look for it (the chart itself
cannot be rendered here). Without it these tests skip and say so.

The chart closes most of its sections (`additionalProperties: false`) but not the top level, where Helm would
ignore a misspelt key such as `apiSever` without a word. Its top-level `properties` are exactly the keys of
its values.yaml, so the test closes the top level too: nothing the chart accepts is refused by that."""

from __future__ import annotations

import copy
import json
import os
import re
from functools import lru_cache
from pathlib import Path

import jsonschema
import pytest
import yaml

from helpers import ROOT

HELM = ROOT / "deploy" / "helm"
SCHEMA_NAME = "airflow-chart-1.18.0.values.schema.json"
VALUES = ["values.yaml", "values-kubernetes-executor.yaml"]


def _schema_path() -> Path | None:
    """HELM_VALUES_SCHEMA, else the file in tests/data/helm/ or in the shared folder beside the checkout."""
    candidates = [os.environ.get("HELM_VALUES_SCHEMA"), ROOT / "tests" / "data" / "helm" / SCHEMA_NAME,
                  ROOT.parent / "shared" / "helm" / SCHEMA_NAME]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


SCHEMA = _schema_path()
if SCHEMA is None:
    pytest.skip(f"the chart's {SCHEMA_NAME} is not here: put chart/values.schema.json of Apache Airflow chart "
                "1.18.0 at tests/data/helm/ or point HELM_VALUES_SCHEMA at it (tests/data/helm/README.md)",
                allow_module_level=True)


@lru_cache(maxsize=1)
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls({**schema, "additionalProperties": False})


def problems(values: dict) -> list[str]:
    errors = sorted(validator().iter_errors(values), key=lambda e: list(e.absolute_path))
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}" for e in errors]


def load(name: str) -> dict:
    return yaml.safe_load((HELM / name).read_text())


def coalesce(base: dict, override: dict) -> dict:
    """What Helm does with `-f base -f override`: maps merge key by key, anything else is replaced, and a
    null removes the key (the chart's default applies again)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = coalesce(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def test_the_schema_is_the_chart_version_the_values_target():
    schema = json.loads(SCHEMA.read_text())
    assert schema["properties"]["executor"]["type"] == "string"
    for name in VALUES:
        header = (HELM / name).read_text().split("\n\n", 1)[0]
        assert "1.18" in header, f"{name}: its header should name the chart version it is written for"
        assert re.findall(r"--version (\S+)", header) in ([], ["1.18.0"]), name


@pytest.mark.parametrize("name", VALUES)
def test_each_values_file_passes_the_chart_schema(name):
    assert problems(load(name)) == []


def test_the_kubernetes_executor_overlay_applied_over_the_base_passes_the_chart_schema():
    merged = coalesce(load("values.yaml"), load("values-kubernetes-executor.yaml"))
    assert merged["executor"] == "KubernetesExecutor" and "brokerUrlSecretName" not in merged["data"]
    assert problems(merged) == []


def test_a_misspelt_top_level_or_nested_key_is_rejected():
    values = load("values.yaml")
    top = {**values, "apiSever": values["apiServer"]}
    assert problems(top) == ["(top level): Additional properties are not allowed ('apiSever' was unexpected)"]

    nested = copy.deepcopy(values)
    nested["scheduler"]["serviceAcount"] = nested["scheduler"].pop("serviceAccount")
    nested["dags"]["persistance"] = nested["dags"].pop("persistence")
    assert problems(nested) == [
        "dags: Additional properties are not allowed ('persistance' was unexpected)",
        "scheduler: Additional properties are not allowed ('serviceAcount' was unexpected)"]


def test_a_value_of_the_wrong_type_is_rejected():
    values = copy.deepcopy(load("values.yaml"))
    values["allowPodLaunching"] = "false"  # a string, not the boolean the chart tests with `if`
    assert problems(values) == ["allowPodLaunching: 'false' is not of type 'boolean'"]


def test_the_chart_create_user_job_stays_off_with_the_simple_auth_manager():
    """Chart 1.18 runs `airflow users create` (a FAB command) when webserver.defaultUser.enabled is true,
    its default; with the simple auth manager that job would fail the install."""
    values = load("values.yaml")
    assert "SimpleAuthManager" in values["config"]["core"]["auth_manager"]
    assert values["webserver"]["defaultUser"]["enabled"] is False
    assert problems({"createUserJob": {"enabled": False}}) == [
        "createUserJob: Additional properties are not allowed ('enabled' was unexpected)"]
