"""DAG parsing cost per model: DagBag over dags/ with 1, 10 and 100 model specs, against one
tutorial-style ML DAG file that imports its libraries at the top, measured in the same run.

    python bench/dag_parse.py [--repeat 3]

Each measurement runs in a fresh interpreter (nothing cached between them) and times the DagBag
fill only, not the interpreter start or `import airflow`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEASURE = """
import sys, time
from airflow.dag_processing.dagbag import DagBag
t = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
elapsed = time.perf_counter() - t
assert not bag.import_errors, bag.import_errors
print(f"{elapsed:.6f} {len(bag.dags)}")
"""
TUTORIAL_DAG = '''
"""A typical tutorial ML DAG: heavy imports at the top, one DAG."""
import great_expectations as gx  # noqa: F401
import mlflow  # noqa: F401
import pandas as pd  # noqa: F401
from sklearn.ensemble import RandomForestClassifier  # noqa: F401
from airflow.sdk import DAG, task

with DAG(dag_id="tutorial_ml", schedule="@daily"):
    @task
    def train():
        return 1
    train()
'''


def _env(models_dir: Path | None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "GX_ANALYTICS_ENABLED": "false", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    if models_dir:
        env["MLOPS_MODELS_DIR"] = str(models_dir)
    return env


def measure(folder: Path, models_dir: Path | None, repeat: int) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", MEASURE, str(folder)], env=_env(models_dir),
                             capture_output=True, text=True, check=True)
        seconds, count = out.stdout.strip().splitlines()[-1].split()
        times.append(float(seconds))
    return statistics.median(times), int(count)


def write_specs(n: int, into: Path) -> Path:
    models = into / f"models-{n}"
    models.mkdir()
    template = (ROOT / "include" / "models" / "churn.yaml").read_text()
    for i in range(n):
        (models / f"model_{i:03d}.yaml").write_text(template.replace("name: churn", f"name: model_{i:03d}"))
    return models


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    os.environ.setdefault("MLOPS_EXPECTATIONS_DIR", str(ROOT / "include" / "expectations"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("AIRFLOW_HOME", str(tmp / "airflow"))
        tutorial = tmp / "tutorial_dags"
        tutorial.mkdir()
        (tutorial / "tutorial_ml.py").write_text(TUTORIAL_DAG)
        baseline, _ = measure(tutorial, None, a.repeat)
        results = {}
        for n in (1, 10, 100):
            results[n] = measure(ROOT / "dags", write_specs(n, tmp), a.repeat)
    print(f"{'specs':>6} {'DAGs':>5} {'parse s':>9} {'vs tutorial DAG':>16}")
    for n, (seconds, dags) in results.items():
        print(f"{n:>6} {dags:>5} {seconds:>9.3f} {seconds / baseline:>15.2f}x")
    per_model_ms = (results[100][0] - results[1][0]) / 99 * 1000
    print(f"\nbaseline: one tutorial-style ML DAG file (heavy imports at the top): {baseline:.3f} s")
    print(f"per model: (t(100) - t(1)) / 99 = {per_model_ms:.2f} ms (target <= 10 ms)")
    print(f"100 platform DAGs parse in {results[100][0] / baseline:.2f}x the time of one tutorial DAG")
    return 0


if __name__ == "__main__":
    sys.exit(main())
