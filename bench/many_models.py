"""A thousand models: the DAG files' parse and serialise cost when the models are spread over the shard files,
and the parse cost a task pays when it starts, at 1 and at 1,000 models.

    python bench/many_models.py [--models 1000] [--shards 16] [--repeat 3] [--whole]

The specs are copies of include/models/churn.yaml with new names, in a temporary folder (MLOPS_MODELS_DIR).
Each measurement runs in a fresh interpreter and times, for one DAG file: the DagBag fill (parse) and
`DagSerialization.to_dict` + JSON of every DAG in it (what the dag-processor stores). A task's start is the
DagBag fill of its DAG's file with Airflow's parsing context set to its DAG id, as a worker does.
Targets: the largest file's parse + serialise under 10 s (a fifth of the dag-processor's 50 s file
timeout); a task's parse flat, within 20%, from 1 to 1,000 models. Figures only: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from mlops_airflow.sharding import SHARD_FILES, shard_file_name, shard_of  # noqa: E402

MEASURE = """
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization
t = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
parse = time.perf_counter() - t
assert not bag.import_errors, bag.import_errors
t = time.perf_counter()
size = sum(len(json.dumps(DagSerialization.to_dict(dag)).encode()) for dag in bag.dags.values())
serialise = time.perf_counter() - t
print(json.dumps({"parse": parse, "serialise": serialise, "bytes": size, "dags": len(bag.dags)}))
"""


def write_specs(n: int, into: Path) -> Path:
    models = into / f"models-{n}"
    models.mkdir()
    template = (ROOT / "include" / "models" / "churn.yaml").read_text()
    for i in range(n):
        (models / f"model_{i:04d}.yaml").write_text(template.replace("name: churn", f"name: model_{i:04d}"))
    return models


def run(dag_file: Path, models: Path, shards: int, dag_id: str | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "GX_ANALYTICS_ENABLED": "false", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "MLOPS_PROJECT_ROOT": str(ROOT), "MLOPS_MODELS_DIR": str(models), "MLOPS_DAG_SHARDS": str(shards)}
    env.pop("_AIRFLOW_PARSING_CONTEXT_DAG_ID", None)
    if dag_id is not None:
        env["_AIRFLOW_PARSING_CONTEXT_DAG_ID"] = dag_id
    out = subprocess.run([sys.executable, "-c", MEASURE, str(dag_file)], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"measuring {dag_file.name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def task_start(models: Path, shards: int, repeat: int) -> float:
    """Median parse of one model's DAG file with the parsing context set to its train DAG."""
    model = "model_0000"
    dag_file = ROOT / "dags" / shard_file_name(shard_of(model, shards))
    return statistics.median(run(dag_file, models, shards, f"{model}__train")["parse"] for _ in range(repeat))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=int, default=1000)
    p.add_argument("--shards", type=int, default=SHARD_FILES, help=f"MLOPS_DAG_SHARDS (default {SHARD_FILES})")
    p.add_argument("--repeat", type=int, default=3, help="runs of each task-start measurement (median)")
    p.add_argument("--whole", action="store_true", help="also measure every model in one file (MLOPS_DAG_SHARDS=1)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("AIRFLOW_HOME", str(tmp / "airflow"))
        many, one = write_specs(a.models, tmp), write_specs(1, tmp)
        print(f"{a.models} models in {a.shards} DAG files (MLOPS_DAG_SHARDS={a.shards})\n")
        print(f"{'file':<28} {'DAGs':>5} {'parse s':>8} {'serialise s':>12} {'total s':>8} {'MB':>7}")
        rows = {}
        for index in range(a.shards):
            name = shard_file_name(index)
            rows[name] = row = run(ROOT / "dags" / name, many, a.shards)
            print(f"{name:<28} {row['dags']:>5} {row['parse']:>8.2f} {row['serialise']:>12.2f} "
                  f"{row['parse'] + row['serialise']:>8.2f} {row['bytes'] / 1e6:>7.1f}")
        total = sum(r["dags"] for r in rows.values())
        largest = max(rows, key=lambda n: rows[n]["parse"] + rows[n]["serialise"])
        big = rows[largest]
        print(f"\nDAGs: {total} ({a.models} models x 4 + mlops__maintenance)")
        parse, serialise = (sum(r[key] for r in rows.values()) for key in ("parse", "serialise"))
        print(f"all files: parse {parse:.1f} s, serialise {serialise:.1f} s, "
              f"{sum(r['bytes'] for r in rows.values()) / 1e6:.0f} MB")
        print(f"largest file: {largest}: parse + serialise {big['parse'] + big['serialise']:.2f} s "
              f"(target < 10 s), {big['bytes'] / 1e6:.1f} MB")
        if a.whole:
            whole = run(ROOT / "dags" / shard_file_name(0), many, 1)
            print(f"one file for all (MLOPS_DAG_SHARDS=1): {whole['dags']} DAGs, parse {whole['parse']:.2f} s + "
                  f"serialise {whole['serialise']:.2f} s = {whole['parse'] + whole['serialise']:.2f} s, "
                  f"{whole['bytes'] / 1e6:.0f} MB")
        print(f"\ntask start (parse of its DAG file, parsing context model_0000__train), median of {a.repeat}:")
        for shards in sorted({1, a.shards}):
            small, large = task_start(one, shards, a.repeat), task_start(many, shards, a.repeat)
            print(f"  MLOPS_DAG_SHARDS={shards:<3} 1 model: {small:.3f} s   {a.models} models: {large:.3f} s   "
                  f"ratio {large / small:.2f} (target <= 1.20)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
