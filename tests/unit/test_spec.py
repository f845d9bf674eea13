import json
import subprocess
import sys

import pytest
import yaml

from helpers import ROOT
from mlops.spec import SpecError, json_schema, load_spec, parse_spec, spec_paths

MODELS = ROOT / "include" / "models"


def example_dict(name="churn"):
    return yaml.safe_load((MODELS / f"{name}.yaml").read_text())


@pytest.mark.parametrize("path", spec_paths(MODELS), ids=lambda p: p.stem)
def test_example_specs_are_valid(path):
    spec = load_spec(path)
    assert spec.name == path.stem
    assert spec.dag_id == f"{path.stem}__train"


def test_every_problem_is_reported_at_once_with_field_and_fix(tmp_path):
    data = example_dict()
    data["dataset"]["task"] = "clustering"
    data["compute"]["memory"] = "lots"
    data["trainer"]["function"] = "not a reference"
    data["evaluation"]["confidence"] = 2
    data["owner_team"] = "x"
    del data["owner"]
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    text = str(err.value)
    assert str(path) in text
    for field in ("dataset.task", "compute.memory", "trainer.function", "evaluation.confidence", "owner_team", "owner"):
        assert field in text, field
    assert len(err.value.problems) == 6
    by_field = {p.split(":", 1)[0]: p for p in err.value.problems}
    assert "use one of" in by_field["dataset.task"] and "clustering" not in by_field["dataset.task"].split("fix")[1]
    assert "write it like '4Gi'" in by_field["compute.memory"]
    assert "write it like 'trainers.churn:train'" in by_field["trainer.function"]
    assert "fix: add this field" in by_field["owner"]
    assert "fix: remove it or fix its spelling" in by_field["owner_team"]


def test_cross_field_problems_are_named(tmp_path):
    data = example_dict()
    data["evaluation"]["primary_metric"] = "rmse"
    data["evaluation"]["guardrails"] = [{"metric": "r2", "min": 0.1}]
    data["dataset"]["features"]["churned"] = {"type": "int"}
    data["schedule"] = "every day"
    with pytest.raises(SpecError) as err:
        parse_spec(data)
    text = str(err.value)
    assert "evaluation.primary_metric: 'rmse' is not a binary_classification metric" in text
    assert "evaluation.guardrails.0.metric" in text
    assert "dataset.target" in text
    assert "schedule" in text


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("apiVersion: mlops.airflow/v1\nname: [unclosed\n")
    with pytest.raises(SpecError, match=r"line \d+, column \d+"):
        load_spec(path)


def test_name_must_match_file(tmp_path):
    path = tmp_path / "other.yaml"
    path.write_text((MODELS / "churn.yaml").read_text())
    with pytest.raises(SpecError, match="differs from the file name 'other'"):
        load_spec(path)


def test_missing_suite_file_is_reported(tmp_path):
    data = example_dict()
    data["validation"]["suite"] = "nope"
    with pytest.raises(SpecError, match="validation.suite: no suite file"):
        parse_spec(data, expectations_dir=tmp_path)


def test_content_hash_ignores_ownership_but_not_training_inputs():
    base = parse_spec(example_dict())
    other_owner = parse_spec({**example_dict(), "owner": "someone-else"})
    data = example_dict()
    data["trainer"]["hyperparameters"]["C"] = 0.5
    other_hp = parse_spec(data)
    assert base.content_hash() == other_owner.content_hash()
    assert base.content_hash() != other_hp.content_hash()


def test_cli_validate_exit_codes(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: mlops.airflow/v1\nname: bad\n")
    ok = subprocess.run([sys.executable, "-m", "mlops.spec", "validate", *map(str, spec_paths(MODELS))],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "churn.yaml: ok" in ok.stdout
    failed = subprocess.run([sys.executable, "-m", "mlops.spec", "validate", str(bad), str(MODELS / "churn.yaml")],
                            capture_output=True, text=True)
    assert failed.returncode == 1
    assert "bad.yaml" in failed.stderr and "dataset: Field required" in failed.stderr
    assert "churn.yaml: ok" in failed.stdout


def test_json_schema_is_exported_and_current():
    schema = json_schema()
    assert schema["properties"]["apiVersion"]["const"] == "mlops.airflow/v1"
    assert "dataset" in schema["required"]
    committed = MODELS / "model-spec.schema.json"
    assert committed.is_file(), "run `make schema` to export the spec's JSON Schema for editors"
    assert json.loads(committed.read_text()) == schema, "the committed schema is stale: run `make schema`"


def test_suite_file_shape_is_checked_with_the_spec(tmp_path):
    (tmp_path / "churn.yaml").write_text(
        "expectations:\n"
        "  - type: column_mean_between\n"
        "  - type: expect_column_values_to_not_be_null\n"
        "    kwargs: {column: tenure_months}\n"
        "    severity: fatal\n"
    )
    with pytest.raises(SpecError) as err:
        parse_spec(example_dict(), expectations_dir=tmp_path)
    text = str(err.value)
    assert "expectations.0.type: String should match pattern" in text
    assert "expectations.1.severity: Input should be 'blocking' or 'warning'" in text


def test_cli_reports_expectation_names_gx_does_not_know(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "expectations").mkdir()
    (tmp_path / "models" / "churn.yaml").write_text((MODELS / "churn.yaml").read_text())
    (tmp_path / "expectations" / "churn.yaml").write_text(
        "expectations:\n  - type: expect_column_values_to_be_awesome\n    kwargs: {column: churned}\n")
    out = subprocess.run([sys.executable, "-m", "mlops.spec", "validate", str(tmp_path / "models" / "churn.yaml")],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert "GX has no 'expect_column_values_to_be_awesome'" in out.stderr


def _spec_file(tmp_path, **trainer):
    (tmp_path / "models").mkdir(exist_ok=True)
    data = example_dict()
    data["trainer"].update(trainer)
    data["validation"].pop("suite", None)
    path = tmp_path / "models" / "churn.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _validate(*args):
    return subprocess.run([sys.executable, "-m", "mlops.spec", "validate", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_a_spec_may_name_only_functions_of_the_trainer_packages(monkeypatch):
    data = example_dict()
    data["trainer"]["function"] = "os:system"
    data["trainer"]["predict"] = "subprocess:call"
    with pytest.raises(SpecError) as err:
        parse_spec(data)
    assert "trainer.function: 'os:system' is outside the platform's trainer packages (trainers)" in str(err.value)
    assert "trainer.predict: 'subprocess:call'" in str(err.value)
    assert "MLOPS_TRAINER_PACKAGES" in str(err.value)
    data["trainer"].update(function="acme_models.churn:train", predict=None)
    monkeypatch.setenv("MLOPS_TRAINER_PACKAGES", "trainers, acme_models")
    assert parse_spec(data).trainer.function == "acme_models.churn:train"
    # `trainers_evil` is not a module of `trainers`.
    data["trainer"]["function"] = "trainers_evil:train"
    with pytest.raises(SpecError, match="outside the platform's trainer packages"):
        parse_spec(data)


def test_cli_resolves_the_trainer_functions_and_suggests_the_fix(tmp_path):
    path = _spec_file(tmp_path, function="trainers.churn:trian")
    out = _validate(path)
    assert out.returncode == 1
    assert "trainer.function: 'trainers.churn' has no function 'trian'" in out.stderr
    assert "did you mean 'trainers.churn:train'" in out.stderr
    path = _spec_file(tmp_path, function="trainers.chrun:train")
    out = _validate(path)
    assert out.returncode == 1 and "Did you mean 'trainers.churn'?" in out.stderr
    assert _validate("--no-import", path).returncode == 0


def test_cli_needs_the_expectations_folder_when_a_suite_is_named(tmp_path):
    path = tmp_path / "elsewhere" / "churn.yaml"
    path.parent.mkdir()
    path.write_text((MODELS / "churn.yaml").read_text())
    out = _validate(path)
    assert out.returncode == 1
    assert "validation.suite: 'churn' is named but no expectations folder was found" in out.stderr
    assert "--expectations DIR" in out.stderr
    named = _validate("--expectations", MODELS.parent / "expectations", path)
    assert named.returncode == 0, named.stderr
    empty = tmp_path / "suites"
    empty.mkdir()
    out = _validate("--expectations", empty, path)
    assert out.returncode == 1 and "no suite file" in out.stderr


def test_descriptions_and_files_are_bounded(tmp_path):
    data = example_dict()
    data["description"] = "x" * 2001
    with pytest.raises(SpecError, match="description: String should have at most 2000 characters"):
        parse_spec(data)
    path = tmp_path / "churn.yaml"
    data["description"] = "y" * (300 * 1024)
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match=r"\(file\): [\d,]+ bytes; a spec is at most 262,144 bytes"):
        load_spec(path)


def test_shape_and_cross_field_problems_are_reported_in_one_pass():
    data = example_dict()
    data["compute"]["memory"] = "lots"  # a shape error in one section
    data["evaluation"]["primary_metric"] = "rmse"  # rules across the sections that are valid
    data["dataset"]["features"]["churned"] = {"type": "int"}
    data["promotion"] = {"alias": "champion", "previous_alias": "champion"}
    with pytest.raises(SpecError) as err:
        parse_spec(data, path="other.yaml")
    fields = [p.split(":", 1)[0] for p in err.value.problems]
    assert fields == ["compute.memory", "dataset.target", "evaluation.primary_metric", "promotion.previous_alias",
                      "name"], err.value.problems


def test_a_rule_is_skipped_when_a_section_it_reads_is_malformed():
    data = example_dict()
    data["dataset"]["task"] = "clustering"  # no task, so no metric can be judged against it
    data["evaluation"]["primary_metric"] = "rmse"
    with pytest.raises(SpecError) as err:
        parse_spec(data)
    assert [p.split(":", 1)[0] for p in err.value.problems] == ["dataset.task"]


def test_the_spec_names_its_dags_assets_and_start():
    from datetime import datetime, timezone

    from mlops.spec import asset_uri, dag_id

    spec = load_spec(MODELS / "churn.yaml")
    assert (spec.dag_id, spec.score_dag_id, spec.monitor_dag_id, spec.rollback_dag_id) == (
        "churn__train", "churn__score", "churn__monitor", "churn__rollback")
    assert dag_id("churn", "train") == spec.dag_id
    assert [spec.asset_uri(k) for k in ("champion", "predictions", "retrain-requested")] == [
        "mlops://models/churn/champion", "mlops://models/churn/predictions", "mlops://models/churn/retrain-requested"]
    assert asset_uri("churn", "champion") == spec.asset_uri("champion")
    assert spec.start_datetime == datetime.combine(spec.start_date, datetime.min.time(), tzinfo=timezone.utc)
    assert spec.start_datetime.tzinfo is timezone.utc and spec.start_datetime.hour == 0
    with pytest.raises(ValueError, match="unknown DAG kind 'serve'"):
        dag_id("churn", "serve")
