"""DAG parsing cost per model: DagBag over dags/ with 1, 10 and 100 model specs, on this tree and on a base
commit (by default the one before DAG sharding), against one tutorial-style ML DAG file that imports its
libraries at the top, all measured in the same run.

    python bench/dag_parse.py [--repeat 3] [--baseline REV] [--shards N]

Each measurement runs in a fresh interpreter (nothing cached between them) and times the DagBag fill only,
not the interpreter start or `import airflow`. The base commit is exported (`git archive`) into a temporary
folder and measured there with its own dags/, plugins/, include/ and example spec. Figures only: nothing
here passes or fails.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COUNTS = (1, 10, 100)
MEASURE = """
import sys, time
from airflow.dag_processing.dagbag import DagBag
import mlops
# The tree under test, not the installed copy: a base commit must be measured with its own code.
assert mlops.__file__.startswith(sys.argv[2]), f"mlops imported from {mlops.__file__}, not {sys.argv[2]}"
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


def _env(tree: Path, models_dir: Path | None, shards: int | None) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree / "plugins"), str(tree / "include")]),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "GX_ANALYTICS_ENABLED": "false",
           "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "MLOPS_PROJECT_ROOT": str(tree),
           "MLOPS_EXPECTATIONS_DIR": str(tree / "include" / "expectations"),
           "MLOPS_COMPUTE_DIR": str(tree / "include" / "compute")}
    env.pop("MLOPS_DAG_SHARDS", None)
    if shards is not None:
        env["MLOPS_DAG_SHARDS"] = str(shards)
    if models_dir:
        env["MLOPS_MODELS_DIR"] = str(models_dir)
    return env


def measure(tree: Path, folder: Path, models_dir: Path | None, repeat: int,
            shards: int | None = None) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", MEASURE, str(folder), str(tree)],
                             env=_env(tree, models_dir, shards), capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"measuring {folder} failed:\n{out.stderr[-3000:]}")
        seconds, count = out.stdout.strip().splitlines()[-1].split()
        times.append(float(seconds))
    return statistics.median(times), int(count)


def write_specs(tree: Path, n: int, into: Path) -> Path:
    models = into / f"models-{n}"
    models.mkdir(parents=True)
    template = (tree / "include" / "models" / "churn.yaml").read_text()
    for i in range(n):
        (models / f"model_{i:03d}.yaml").write_text(template.replace("name: churn", f"name: model_{i:03d}"))
    return models


def default_baseline() -> str:
    """The commit before the one that added DAG sharding; the merge base with main if that is not committed."""
    added = subprocess.run(["git", "-C", str(ROOT), "log", "--diff-filter=A", "--format=%H", "--",
                            "plugins/mlops_airflow/sharding.py"], capture_output=True, text=True, check=True)
    commits = added.stdout.split()
    if commits:
        return f"{commits[-1]}^"
    return subprocess.run(["git", "-C", str(ROOT), "merge-base", "HEAD", "main"], capture_output=True, text=True,
                          check=True).stdout.strip()


def export(rev: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--baseline", metavar="REV",
                   help="the commit to compare with (default: the one before DAG sharding)")
    p.add_argument("--shards", type=int, default=None, help="MLOPS_DAG_SHARDS for this tree (default: unset, 1)")
    a = p.parse_args()
    rev = a.baseline or default_baseline()
    short = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", rev], capture_output=True, text=True,
                           check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("AIRFLOW_HOME", str(tmp / "airflow"))
        base = export(rev, tmp / "base")
        tutorial = tmp / "tutorial_dags"
        tutorial.mkdir()
        (tutorial / "tutorial_ml.py").write_text(TUTORIAL_DAG)
        tutorial_s, _ = measure(ROOT, tutorial, None, a.repeat)
        here, before = {}, {}
        for n in COUNTS:
            here[n] = measure(ROOT, ROOT / "dags", write_specs(ROOT, n, tmp / "here"), a.repeat, a.shards)
            before[n] = measure(base, base / "dags", write_specs(base, n, tmp / "base-models"), a.repeat)
    print(f"this tree (MLOPS_DAG_SHARDS={a.shards or 1}) against base commit {short} ({rev}), median of {a.repeat}\n")
    print(f"{'specs':>6} {'DAGs':>5} {'parse s':>9} {'base s':>8} {'ratio':>7} {'vs tutorial DAG':>16}")
    for n in COUNTS:
        (seconds, dags), (base_s, _) = here[n], before[n]
        print(f"{n:>6} {dags:>5} {seconds:>9.3f} {base_s:>8.3f} {seconds / base_s:>6.2f}x "
              f"{seconds / tutorial_s:>15.2f}x")
    per_model = (here[100][0] - here[1][0]) / 99 * 1000
    per_model_base = (before[100][0] - before[1][0]) / 99 * 1000
    print(f"\nbaseline: one tutorial-style ML DAG file (heavy imports at the top): {tutorial_s:.3f} s")
    print(f"per model: (t(100) - t(1)) / 99 = {per_model:.2f} ms here, {per_model_base:.2f} ms at {short}: "
          f"ratio {per_model / per_model_base:.2f} (target <= 1.0, and <= 10 ms)")
    print(f"100 platform DAGs parse in {here[100][0] / tutorial_s:.2f}x the time of one tutorial DAG")
    return 0


if __name__ == "__main__":
    sys.exit(main())
