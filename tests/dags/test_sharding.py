"""DAG files as shards: every model is built by exactly one file, chosen by a hash that is the same in every
process; a worker about to run a task builds only that task's DAG, reading only its model's spec."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys

import pytest

from helpers import MODELS, ROOT

NAMES = [f"model_{i:02d}" for i in range(40)]  # enough for every one of 16 shards to get some
MODEL_NAMES = NAMES[:16]  # the models of the DagBag tests: every one of 5 shards gets some


@pytest.fixture(scope="module")
def many_models(tmp_path_factory):
    """Copies of churn, one of which trains on Kubernetes."""
    models = tmp_path_factory.mktemp("many") / "models"
    models.mkdir()
    template = (MODELS / "churn.yaml").read_text()
    for name in MODEL_NAMES:
        text = template.replace("name: churn", f"name: {name}")
        if name == "model_01":  # shard 1 of 16: the maintenance DAG (shard 0) must still see its backend
            text = text.replace("backend: local", "backend: kubernetes", 1)  # compute, not serving
        (models / f"{name}.yaml").write_text(text)
    return models


def test_shard_assignment_is_total_and_pinned():
    from mlops_airflow.sharding import SHARD_FILES, shard_of

    for count in range(1, SHARD_FILES + 1):
        shards = [shard_of(name, count) for name in NAMES]
        assert all(0 <= s < count for s in shards)
    assert len({shard_of(name, 16) for name in NAMES}) == 16
    # Moving a model to another file is harmless but not free: the hash must not change by accident.
    assert [shard_of(n, 4) for n in ("churn", "demand", "demand_nn")] == [0, 3, 0]
    assert [shard_of(n, 16) for n in ("churn", "demand", "demand_nn")] == [12, 3, 0]


def test_shard_assignment_is_the_same_in_every_process():
    code = "from mlops_airflow.sharding import shard_of; print([shard_of(f'model_{i:02d}', 7) for i in range(40)])"
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        outputs.add(out.stdout.strip())
    assert len(outputs) == 1, outputs


def test_dags_folder_holds_one_file_per_shard_each_building_its_own_index():
    from mlops_airflow.sharding import SHARD_FILES, shard_file_name

    platform_files = sorted(p.name for p in (ROOT / "dags").glob("mlops_models*.py"))
    assert platform_files == sorted(shard_file_name(i) for i in range(SHARD_FILES))
    for index in range(SHARD_FILES):
        tree = ast.parse((ROOT / "dags" / shard_file_name(index)).read_text())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "build_shard"]
        assert len(calls) == 1 and ast.literal_eval(calls[0].args[0]) == index, shard_file_name(index)


def test_sharded_dagbag_has_the_same_dags_each_in_its_models_file(parse_dags, many_models):
    from mlops_airflow.sharding import SHARD_FILES, shard_file_name, shard_of

    whole = parse_dags(MLOPS_MODELS_DIR=many_models)
    sharded = parse_dags(MLOPS_MODELS_DIR=many_models, MLOPS_DAG_SHARDS=SHARD_FILES)
    assert whole.import_errors == {} and sharded.import_errors == {}
    assert len(whole.dags) == 5 * len(MODEL_NAMES) + 1  # churn serves: deploy is the fifth
    assert sorted(sharded.dags) == sorted(whole.dags)
    for dag_id, dag in sharded.dags.items():
        model = dag_id.rpartition("__")[0]
        index = 0 if dag_id == "mlops__maintenance" else shard_of(model, SHARD_FILES)
        assert os.path.basename(dag.fileloc) == shard_file_name(index), dag_id
    backends = [bag.dags["mlops__maintenance"].get_task("sync_pools").cluster_backends for bag in (whole, sharded)]
    assert backends == [["kubernetes"], ["kubernetes"]]


def test_every_model_is_built_by_exactly_one_file(many_models, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    from mlops_airflow.sharding import SHARD_FILES, shard_file_name

    monkeypatch.setenv("MLOPS_MODELS_DIR", str(many_models))
    monkeypatch.setenv("MLOPS_DAG_SHARDS", "5")
    seen: dict[str, str] = {}
    for index in range(SHARD_FILES):
        bag = DagBag(dag_folder=str(ROOT / "dags" / shard_file_name(index)))
        assert bag.import_errors == {}
        assert (index < 5) == bool(bag.dags), f"shard {index} of 5"
        for dag_id in bag.dags:
            assert dag_id not in seen, f"{dag_id} in {seen.get(dag_id)} and {shard_file_name(index)}"
            seen[dag_id] = shard_file_name(index)
    expected = {f"{m}__{kind}" for m in MODEL_NAMES for kind in ("train", "score", "monitor", "rollback", "deploy")}
    assert set(seen) == expected | {"mlops__maintenance"}
    assert seen["mlops__maintenance"] == "mlops_models.py"


def test_more_shards_than_files_shows_every_orphaned_model_as_broken(parse_dags, many_models):
    from mlops_airflow.sharding import SHARD_FILES, shard_of

    count = SHARD_FILES + 4
    bag = parse_dags(MLOPS_MODELS_DIR=many_models, MLOPS_DAG_SHARDS=count)
    assert bag.import_errors == {}
    orphans = [m for m in MODEL_NAMES if shard_of(m, count) >= SHARD_FILES]
    assert orphans
    for model in MODEL_NAMES:
        train = bag.dags[f"{model}__train"]
        if model in orphans:
            assert "broken-spec" in train.tags and f"MLOPS_DAG_SHARDS={count}" in train.doc_md, model
            assert os.path.basename(train.fileloc) == "mlops_models.py"
        else:
            assert "broken-spec" not in train.tags and f"{model}__score" in bag.dags
    assert bag.dags["mlops__maintenance"].get_task("sync_pools").cluster_backends == ["kubernetes"]


def test_a_missing_shard_file_shows_its_models_as_broken(parse_dags, many_models, tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    from mlops_airflow.sharding import shard_of

    dags = tmp_path / "dags"
    shutil.copytree(ROOT / "dags", dags)
    (dags / "mlops_models_shard_02.py").unlink()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_MODELS_DIR", str(many_models))
        patch.setenv("MLOPS_DAG_SHARDS", "4")
        bag = DagBag(dag_folder=str(dags))
    assert bag.import_errors == {}
    for model in MODEL_NAMES:
        broken = "broken-spec" in bag.dags[f"{model}__train"].tags
        assert broken == (shard_of(model, 4) == 2), model
    orphan = next(m for m in MODEL_NAMES if shard_of(m, 4) == 2)
    assert "no mlops_models_shard_02.py" in bag.dags[f"{orphan}__train"].doc_md


@pytest.mark.parametrize("value", ["0", "four", "-1"])
def test_a_bad_shard_count_fails_every_dag_file_naming_the_variable(parse_dags, value):
    bag = parse_dags(MLOPS_DAG_SHARDS=value)
    assert bag.dags == {}
    assert bag.import_errors and all(f"MLOPS_DAG_SHARDS={value!r}" in e for e in bag.import_errors.values())


@pytest.fixture
def reads(monkeypatch):
    """The spec files the factory loads."""
    import mlops_airflow.builders.factory as factory

    seen, real = [], factory.load_spec

    def load_spec(path, *args, **kwargs):
        seen.append(os.path.basename(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(factory, "load_spec", load_spec)
    return seen


@pytest.mark.parametrize("dag_id", ["demand__train", "demand__score", "churn__monitor", "demand_nn__rollback"])
def test_a_task_builds_only_its_dag_from_only_its_spec(parse_dags, dagbag, reads, dag_id):
    bag = parse_dags(_AIRFLOW_PARSING_CONTEXT_DAG_ID=dag_id, _AIRFLOW_PARSING_CONTEXT_TASK_ID="any")
    assert bag.import_errors == {}
    assert list(bag.dags) == [dag_id]
    assert reads == [f"{dag_id.rpartition('__')[0]}.yaml"]
    built, full = bag.dags[dag_id], dagbag.dags[dag_id]
    assert [t.task_id for t in built.topological_sort()] == [t.task_id for t in full.topological_sort()]
    assert built.params.dump() == full.params.dump()


def test_a_task_in_a_sharded_deployment_parses_only_its_file(many_models, reads, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    from mlops_airflow.sharding import shard_file_name, shard_of

    monkeypatch.setenv("MLOPS_MODELS_DIR", str(many_models))
    monkeypatch.setenv("MLOPS_DAG_SHARDS", "16")
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "model_07__train")
    bag = DagBag(dag_folder=str(ROOT / "dags" / shard_file_name(shard_of("model_07", 16))))
    assert list(bag.dags) == ["model_07__train"] and reads == ["model_07.yaml"]


def test_the_maintenance_task_builds_only_maintenance_from_every_spec(many_models, reads, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("MLOPS_MODELS_DIR", str(many_models))
    monkeypatch.setenv("MLOPS_DAG_SHARDS", "16")
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "mlops__maintenance")
    bag = DagBag(dag_folder=str(ROOT / "dags" / "mlops_models.py"))  # its file, as the worker parses it
    assert list(bag.dags) == ["mlops__maintenance"]
    assert sorted(reads) == sorted(f"{m}.yaml" for m in MODEL_NAMES)
    assert bag.dags["mlops__maintenance"].get_task("sync_pools").cluster_backends == ["kubernetes"]


def test_a_broken_spec_task_still_finds_its_dag(parse_dags, models_with_a_broken_spec, tmp_path, reads):
    models = tmp_path / "models"
    shutil.copytree(models_with_a_broken_spec, models)
    (models / "Not-A-Name.yaml").write_text((MODELS / "churn.yaml").read_text())
    for dag_id, read in (("churn_broken__train", ["churn_broken.yaml"]), ("garbage__train", ["garbage.yaml"]),
                         ("broken_spec__Not-A-Name.yaml", [])):
        reads.clear()
        bag = parse_dags(MLOPS_MODELS_DIR=models, _AIRFLOW_PARSING_CONTEXT_DAG_ID=dag_id)
        assert list(bag.dags) == [dag_id] and "broken-spec" in bag.dags[dag_id].tags, dag_id
        assert reads == read, dag_id


def test_a_model_named_like_a_broken_file_id_still_gets_only_its_dag(parse_dags, tmp_path, reads):
    models = tmp_path / "models"
    models.mkdir()
    (models / "broken_spec.yaml").write_text((MODELS / "churn.yaml").read_text().replace("name: churn",
                                                                                          "name: broken_spec"))
    bag = parse_dags(MLOPS_MODELS_DIR=models, _AIRFLOW_PARSING_CONTEXT_DAG_ID="broken_spec__score")
    assert list(bag.dags) == ["broken_spec__score"] and reads == ["broken_spec.yaml"]


def test_an_id_the_file_does_not_know_builds_everything(parse_dags, dagbag):
    bag = parse_dags(_AIRFLOW_PARSING_CONTEXT_DAG_ID="someone_elses_dag")
    assert sorted(bag.dags) == sorted(dagbag.dags)
