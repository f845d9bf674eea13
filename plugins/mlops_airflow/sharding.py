"""Which DAG file builds which model's DAGs.

The dag-processor parses each file of dags/ in a process of its own, under a per-file timeout (50 s by
default); one file building every model's DAGs comes near it at about a thousand models. So the platform's
DAG files are shards: `dags/mlops_models.py` is shard 0 and `dags/mlops_models_shard_01.py` to
`_15.py` are shards 1 to 15 (`SHARD_FILES` in all). `MLOPS_DAG_SHARDS` (an integer >= 1, default 1) says
how many of them are used; the others build nothing and import nothing but this module.

* A model belongs to shard `crc32(model name) % MLOPS_DAG_SHARDS`: the same in every process and on every
  machine (Python's `hash()` of a string changes per process), so a task finds its DAG in the file that
  the dag-processor found it in. DAG ids do not depend on the shard; changing the count moves DAGs
  between files and Airflow follows them at the next parse.
* Shard 0 also builds `mlops__maintenance` (from every model's spec, whatever its shard) and the DAGs of
  spec files that define no model.
* More shards than files: when `MLOPS_DAG_SHARDS` is larger than the shard files present in dags/, shard 0
  builds, for every model whose shard has no file, a broken-spec DAG in place of its `<model>__train` that
  names the setting and the fix, so no model goes missing without a word in the UI.
* A value that is not an integer >= 1 fails the import of every DAG file, naming the variable.

A task's worker parses only its DAG's file, and there builds only its DAG (`build_dags`' `dag_id`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

from mlops.settings import get_settings

SHARD_FILES = 16
SETTING = "MLOPS_DAG_SHARDS"


def shard_count() -> int:
    """How many DAG files the models are spread over (`MLOPS_DAG_SHARDS`, validated by the settings)."""
    return get_settings().dags.shards


def shard_of(model: str, count: int) -> int:
    return zlib.crc32(model.encode()) % count


def shard_file_name(index: int) -> str:
    return "mlops_models.py" if index == 0 else f"mlops_models_shard_{index:02d}.py"


@dataclass(frozen=True)
class Shard:
    """The models one DAG file builds; the whole platform when there is one shard."""

    index: int = 0
    count: int = 1
    missing: frozenset[int] = field(default_factory=frozenset)  # shards below `count` that have no file

    @property
    def home(self) -> bool:
        """The shard that builds the maintenance DAG, files that define no model, and orphaned models."""
        return self.index == 0

    def builds(self, model: str) -> bool:
        return shard_of(model, self.count) == self.index

    def orphaned(self, model: str) -> bool:
        """A model of a shard with no file: the home shard reports it as broken."""
        return self.home and shard_of(model, self.count) in self.missing

    def orphan_problem(self, path: Path) -> str:
        index = shard_of(Path(path).stem, self.count)
        return (f"{path}: {SETTING}={self.count} puts this model in DAG shard {index}, but dags/ has no "
                f"{shard_file_name(index)}: set {SETTING} to at most the number of shard files "
                f"(mlops_models.py and mlops_models_shard_NN.py) in dags/ ({SHARD_FILES} ship), or add the "
                "missing ones")


def build_shard(index: int, dag_file: str) -> dict:
    """The DAGs of shard `index`, for `dags/<shard file>` to put in its globals."""
    count = shard_count()
    if index >= count:
        return {}
    from airflow.sdk import get_parsing_context

    from mlops_airflow.builders.factory import build_dags

    folder = Path(dag_file).resolve().parent
    missing = frozenset(i for i in range(1, count) if index == 0 and not (folder / shard_file_name(i)).is_file())
    # Set when a worker parses the file to run one task: then only that task's DAG is built.
    return build_dags(shard=Shard(index, count, missing), dag_id=get_parsing_context().dag_id)
