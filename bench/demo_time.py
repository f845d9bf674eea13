"""Time of the demo after installation: every example model, two logical dates each, on a fresh store;
then the same again, where every train step is a cache hit (the ratio is the cache's saving).

    python bench/demo_time.py

Prints wall time per run and the demo's own per-task breakdown. Needs an initialised Airflow DB
(`make airflow-db`); the MLflow store, data and audit log go to a temporary folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_demo(env: dict) -> tuple[float, str]:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "tools.demo"], env=env, capture_output=True, text=True,
                         cwd=ROOT)
    elapsed = time.perf_counter() - started
    if out.returncode != 0:
        print(out.stdout[-4000:], out.stderr[-4000:], sep="\n")
        raise SystemExit(f"demo failed with exit code {out.returncode}")
    return elapsed, out.stdout


def breakdown(stdout: str) -> str:
    m = re.search(r"Where the time went.*?all DAG runs: [\d.]+s", stdout, re.S)
    return m.group(0) if m else "(no breakdown printed)"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MLOPS_HOME": tmp, "PYTHONPATH": str(ROOT / "plugins")}
        env.pop("MLFLOW_TRACKING_URI", None)
        env.pop("MLOPS_DATA_ROOT", None)
        first, out1 = run_demo(env)
        second, out2 = run_demo(env)
    trained = out1.count("trained: models:/")
    print(f"first run (generates data, trains {trained} model versions):")
    print(breakdown(out1))
    print("\nsecond run (same dates, data, specs and code: cache hits):")
    print(breakdown(out2))
    print(f"\nwall time: first {first:.1f} s (target <= 120 s on 2 cores), second {second:.1f} s, "
          f"second/first = {second / first:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
