"""DagBags shared by the DAG tests: parsing dags/ is the slow part of them, and the tests only read the DAGs."""

from __future__ import annotations

import shutil

import pytest

from helpers import MODELS, ROOT


@pytest.fixture(scope="session")
def parse_dags():
    """`parse_dags(MLOPS_MODELS_DIR=...)`: a DagBag of dags/ under those variables (restored afterwards)."""

    def parse(**env):
        from airflow.dag_processing.dagbag import DagBag

        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, str(value))
            return DagBag(dag_folder=str(ROOT / "dags"))

    return parse


@pytest.fixture(scope="session")
def dagbag(parse_dags):
    """dags/ over the example specs, parsed once per session."""
    return parse_dags()


@pytest.fixture(scope="session")
def models_with_a_broken_spec(tmp_path_factory):
    """The example specs plus one that fails a check and one that is not YAML."""
    models = tmp_path_factory.mktemp("broken") / "models"
    shutil.copytree(MODELS, models)
    text = (MODELS / "churn.yaml").read_text().replace("name: churn", "name: churn_broken")
    text = text.replace("primary_metric: roc_auc", "primary_metric: accuracy_typo")
    (models / "churn_broken.yaml").write_text(text)
    (models / "garbage.yaml").write_text("apiVersion: mlops.airflow/v1\nname: garbage\nowner: [\n")
    return models


@pytest.fixture(scope="session")
def broken_dagbag(parse_dags, models_with_a_broken_spec):
    return parse_dags(MLOPS_MODELS_DIR=models_with_a_broken_spec)
