"""Which file defines which model: a second file for a model, or a file name that is not a model name, is
reported as a DAG of its own and never takes another model's DAGs away."""

import shutil
import subprocess
import sys

from helpers import MODELS, ROOT


def parse(models_dir, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("MLOPS_MODELS_DIR", str(models_dir))
    return DagBag(dag_folder=str(ROOT / "dags"))


def test_a_second_file_for_a_model_is_reported_and_the_model_keeps_working(tmp_path, monkeypatch):
    models = tmp_path / "models"
    shutil.copytree(MODELS, models)
    shutil.copy(models / "churn.yaml", models / "churn.yml")
    bag = parse(models, monkeypatch)
    assert bag.import_errors == {}
    churn = bag.dags["churn__train"]
    assert "broken-spec" not in churn.tags and len(churn.tasks) == 5
    assert {"churn__score", "churn__monitor", "churn__rollback"} <= set(bag.dags)
    conflict = bag.dags["broken_spec__churn.yml"]
    assert "broken-spec" in conflict.tags
    assert "churn.yml" in conflict.doc_md and "already defined by churn.yaml" in conflict.doc_md


def test_a_broken_second_file_does_not_replace_the_working_model(tmp_path, monkeypatch):
    models = tmp_path / "models"
    shutil.copytree(MODELS, models)
    (models / "churn.yml").write_text("apiVersion: mlops.airflow/v1\nname: churn\nowner: [\n")
    bag = parse(models, monkeypatch)
    assert "broken-spec" not in bag.dags["churn__train"].tags
    assert "broken-spec" in bag.dags["broken_spec__churn.yml"].tags


def test_file_names_that_need_mangling_are_refused_with_the_rule(tmp_path, monkeypatch):
    models = tmp_path / "models"
    shutil.copytree(MODELS, models)
    text = (MODELS / "demand.yaml").read_text()
    # Two names that a character-replacing scheme would both turn into `d_mand__train`.
    (models / "démand.yaml").write_text(text)
    (models / "dëmand.yaml").write_text(text)
    bag = parse(models, monkeypatch)
    assert bag.import_errors == {}
    broken = [d for d in bag.dags.values() if "broken-spec" in d.tags]
    assert len(broken) == 2 and len({d.dag_id for d in broken}) == 2
    for dag in broken:
        assert "is not a model name" in dag.doc_md and "lower case letters, digits and underscores" in dag.doc_md
    assert "broken-spec" not in bag.dags["demand__train"].tags


def test_spec_validate_reports_the_conflict_across_the_files_it_is_given(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(MODELS, models)
    shutil.copytree(MODELS.parent / "expectations", tmp_path / "expectations")
    shutil.copy(models / "churn.yaml", models / "churn.yml")
    out = subprocess.run([sys.executable, "-m", "mlops.spec", "validate", "--no-import",
                          str(models / "churn.yaml"), str(models / "churn.yml")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert f"{models / 'churn.yaml'}: ok" in out.stdout
    assert f"{models / 'churn.yml'}: 1 problem" in out.stderr and "already defined by churn.yaml" in out.stderr
