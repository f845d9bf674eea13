"""Speed and memory of the drift statistics (mlops.drift): in process, and through the CLI as a user runs it.

    python bench/drift_speed.py [--rows 1000000] [--shift 0.05] [--cli-rows 200000 1000000] [--scaling]
                                [--evidently-python PATH]

1. `--rows` rows x 10 numeric + 2 categorical columns against a same-sized reference: CPU seconds of
   compare_frames on one core (file reading excluded; BLAS/OpenMP pinned to one thread), and the peak RSS
   above the post-import baseline as a multiple of the two frames' memory_usage(deep=True).
2. The same current data against the reference's stored profile (what the monitor DAG does), and the
   one-off cost of building that profile.
3. The CLI, `python -m mlops.drift --reference REF --current CUR` on Parquet files of each `--cli-rows`
   size, in fresh processes: wall and CPU time (medians over REPEATS rounds) split into start-up (Python
   and the imports the CLI makes before reading), reading the two files, and the compute that is left,
   which is what the 1 s target is about; next to it, compare_frames in this process on the same frames,
   and a baseline timed in the same run: the same per-column statistics through scipy (ks_2samp,
   wasserstein_distance, the Jensen-Shannon distance).
4. With --scaling: one numeric and one categorical column at 10^5, 10^6 and 10^7 rows.
5. With --evidently-python: the same data through Evidently 0.7's DataDriftPreset in that interpreter (a
   separate virtual environment: Evidently needs pandas < 3), its time, the ratio, and whether the
   per-column verdicts agree.
"""

from __future__ import annotations

import functools
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "include")]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.stats  # noqa: E402,F401 - the baseline's; imported before any timing, so no in-process figure pays it
from scipy.spatial.distance import jensenshannon  # noqa: E402

from mlops.drift.compare import compare_frames  # noqa: E402
from mlops.drift.profile import build_profile, compare_to_profile  # noqa: E402


def rss_kib(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def make_frame(rows: int, seed: int, shift: float = 0.0, numeric: int = 10, categorical: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = {}
    makers = [lambda n: rng.normal(shift, 1, n), lambda n: rng.gamma(2, 2, n) + shift,
              lambda n: rng.uniform(0, 10, n), lambda n: rng.lognormal(0, 1, n),
              lambda n: rng.integers(0, 100, n).astype("float64"), lambda n: rng.normal(0, 5, n).round(1)]
    for i in range(numeric):
        cols[f"num_{i}"] = makers[i % len(makers)](rows)
    levels = [[f"c{k}" for k in range(5)], [f"cat{k}" for k in range(50)]]
    for i in range(categorical):
        cols[f"cat_{i}"] = rng.choice(levels[i % 2], rows).astype(object)
    frame = pd.DataFrame(cols)
    frame.loc[rng.random(rows) < 0.01, "num_0"] = np.nan
    return frame


def timed(fn):
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start


def headline(rows: int, shift: float) -> tuple[pd.DataFrame, pd.DataFrame, list]:
    baseline = rss_kib()
    reference, current = make_frame(rows, 1), make_frame(rows, 2, shift=shift)
    frames_mib = (reference.memory_usage(deep=True).sum() + current.memory_usage(deep=True).sum()) / 2**20
    results, seconds = timed(lambda: compare_frames(reference, current))
    peak = rss_kib("VmHWM")
    print(f"{rows:,} rows x 12 columns vs a same-sized reference (exact, as the CLI): {seconds:.2f} s CPU "
          f"(target <= 1 s); drifted: {[r.column for r in results if r.drifted] or 'none'}")
    print(f"  peak RSS above the post-import baseline: {(peak - baseline) / 1024:.0f} MiB = "
          f"{(peak - baseline) / 1024 / frames_mib:.2f}x the frames' {frames_mib:.0f} MiB (target <= 3x)")
    profile, build_s = timed(lambda: build_profile(reference))
    _, against_s = timed(lambda: compare_to_profile(profile, current))
    print(f"  against the stored profile: {against_s:.2f} s ({against_s / seconds:.2f}x the exact run); "
          f"building the profile once: {build_s:.2f} s; profile JSON {len(json.dumps(profile)) / 1024:.0f} KiB")
    return reference, current, results


REPEATS = 5
STARTUP = "import mlops.drift.cli, mlops.drift.compare"  # what `python -m mlops.drift` imports before reading
READING = STARTUP + "; from mlops.drift.cli import read_table; read_table(sys.argv[1]); read_table(sys.argv[2])"


def fresh_process(args: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one fresh process `python args`."""
    path = os.pathsep.join(filter(None, [str(ROOT / "include"), os.environ.get("PYTHONPATH")]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": path})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cli_phases(ref_path: str, cur_path: str) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of start-up, reading and compute over REPEATS rounds. Each round runs the
    three processes back to back and takes differences within the round, so load from other processes
    shifts all three alike."""
    rounds = []
    for _ in range(REPEATS):
        startup = fresh_process(["-c", STARTUP])
        reading = fresh_process(["-c", "import sys; " + READING, ref_path, cur_path])
        whole = fresh_process(["-m", "mlops.drift", "--reference", ref_path, "--current", cur_path])
        rounds.append({"CLI": whole, "start-up": startup,
                       "reading": tuple(r - s for r, s in zip(reading, startup, strict=True)),
                       "compute": tuple(w - r for w, r in zip(whole, reading, strict=True))})
    return {phase: (float(np.median([r[phase][0] for r in rounds])), float(np.median([r[phase][1] for r in rounds])))
            for phase in rounds[0]}


def scipy_baseline(reference: pd.DataFrame, current: pd.DataFrame) -> float:
    """CPU seconds of the same per-column statistics through scipy (PSI left out: scipy has none)."""
    start = time.process_time()
    for name in reference.columns:
        ref, cur = reference[name].dropna(), current[name].dropna()
        if pd.api.types.is_numeric_dtype(ref):
            scipy.stats.ks_2samp(ref.to_numpy(), cur.to_numpy())
            scipy.stats.wasserstein_distance(ref.to_numpy(), cur.to_numpy())
        else:
            counts = pd.concat([ref.value_counts(), cur.value_counts()], axis=1).fillna(0)
            jensenshannon(counts.iloc[:, 0], counts.iloc[:, 1], base=2)
    return time.process_time() - start


def cli(sizes: list[int], shift: float) -> None:
    print(f"the CLI in fresh processes (`python -m mlops.drift --reference REF --current CUR`, Parquet, "
          f"median of {REPEATS} rounds; wall and CPU seconds; compute = CLI - start-up - reading):")
    for rows in sizes:
        reference, current = make_frame(rows, 1), make_frame(rows, 2, shift=shift)
        start = time.perf_counter()
        _, in_process_cpu = timed(functools.partial(compare_frames, reference, current))
        in_process_wall = time.perf_counter() - start
        baseline = scipy_baseline(reference, current)
        with tempfile.TemporaryDirectory() as tmp:
            ref_path, cur_path = f"{tmp}/ref.parquet", f"{tmp}/cur.parquet"
            reference.to_parquet(ref_path)
            current.to_parquet(cur_path)
            del reference, current
            phases = cli_phases(ref_path, cur_path)
        figures = ", ".join(f"{phase} {wall:.2f} s ({cpu:.2f} CPU)" for phase, (wall, cpu) in phases.items())
        compute, compute_cpu = phases["compute"]
        print(f"  {rows:>9,} rows x 12 columns: {figures}; compute target <= 1 s")
        print(f"  {'':>9}   in this process: compare_frames {in_process_wall:.2f} s wall, {in_process_cpu:.2f} s CPU; "
              f"the CLI's compute is {compute / in_process_wall:.2f}x that")
        print(f"  {'':>9}   baseline, the same statistics through scipy in this process: {baseline:.2f} s CPU; ours "
              f"{baseline / in_process_cpu:.1f}x faster in this process, "
              f"{baseline / max(compute_cpu, 1e-9):.1f}x in the CLI's compute (CPU)")


def scaling() -> None:
    print("scaling (1 numeric + 1 categorical column, exact):")
    base = None
    for rows in (100_000, 1_000_000, 10_000_000):
        ref, cur = make_frame(rows, 3, numeric=1, categorical=1), make_frame(rows, 4, 0.05, numeric=1, categorical=1)
        _, seconds = timed(functools.partial(compare_frames, ref, cur))
        base = base or seconds
        print(f"  {rows:>11,} rows: {seconds:6.2f} s ({seconds / base:6.1f}x the 10^5 time)")
        del ref, cur


def evidently(python: str, reference: pd.DataFrame, current: pd.DataFrame, ours: list, our_seconds: float) -> None:
    script = r'''
import json, sys, time
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
start = time.process_time()
snapshot = Report([DataDriftPreset()]).run(cur, ref)
seconds = time.process_time() - start
drifted = {}
for metric in snapshot.dict()["metrics"]:
    name = metric.get("metric_name", "") or str(metric.get("metric_id", ""))
    if "ValueDrift" in name:
        col = name.split("column=")[1].split(",")[0].rstrip(")")
        drifted[col] = metric["value"]
print(json.dumps({"seconds": seconds, "values": drifted}))
'''
    with tempfile.TemporaryDirectory() as tmp:
        reference.to_parquet(f"{tmp}/ref.parquet")
        current.to_parquet(f"{tmp}/cur.parquet")
        out = subprocess.run([python, "-c", script, f"{tmp}/ref.parquet", f"{tmp}/cur.parquet"], capture_output=True,
                             text=True, env={**os.environ, "DO_NOT_TRACK": "1"})
    if out.returncode != 0:
        print(f"Evidently run failed: {out.stderr.strip().splitlines()[-1] if out.stderr else out.returncode}")
        return
    theirs = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"Evidently DataDriftPreset: {theirs['seconds']:.2f} s CPU; ours {our_seconds:.2f} s: "
          f"{theirs['seconds'] / our_seconds:.1f}x faster")
    # On this many rows Evidently judges numeric columns by Wasserstein / reference SD and categorical ones
    # by Jensen-Shannon distance, each drifted from 0.1: the same quantities as ours, so compare them too.
    their_drift = sorted(c for c, v in theirs["values"].items() if v >= 0.1)
    our_default = sorted(r.column for r in ours if r.drifted)
    print(f"  with our default thresholds (Wasserstein 0.3 SD, PSI, KS, JS) we flag {our_default or 'none'}")
    from mlops.drift.compare import Thresholds

    matched = compare_frames(reference, current, thresholds=Thresholds(wasserstein=0.1, js_distance=0.1))
    our_drift = sorted(r.column for r in matched if r.drifted)
    same = {r.column: r.statistics.get("wasserstein_normalised", r.statistics.get("js_distance")) for r in ours}
    gap = max(abs(same[c] - v) for c, v in theirs["values"].items())
    print(f"  with Evidently's thresholds (Wasserstein 0.1 SD, JS 0.1): Evidently {their_drift or 'none'}, "
          f"ours {our_drift or 'none'} -> "
          f"{'the same verdicts' if their_drift == our_drift else 'DIFFERENT verdicts'}; largest difference in "
          f"their statistic (Wasserstein/SD, JS distance) vs ours: {gap:.2g}")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--scaling", action="store_true")
    p.add_argument("--evidently-python", help="python of a venv with evidently==0.7.* (pandas < 3)")
    p.add_argument("--shift", type=float, default=0.05, help="shift of two numeric columns in the current data")
    p.add_argument("--cli-rows", type=int, nargs="*", default=[200_000, 1_000_000],
                   help="sizes for the CLI runs in fresh processes (none: skip them)")
    a = p.parse_args(argv)
    reference, current, ours = headline(a.rows, a.shift)
    if a.evidently_python:
        _, our_seconds = timed(functools.partial(compare_frames, reference, current))
        evidently(a.evidently_python, reference, current, ours, our_seconds)
    del reference, current
    if a.cli_rows:
        cli(a.cli_rows, a.shift)
    if a.scaling:
        scaling()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
