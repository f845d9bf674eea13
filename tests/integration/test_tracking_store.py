"""A fresh SQLite tracking store touched by several processes at once (the first training runs of a
backfill): each must find it ready, none may fail on the store's schema migration."""

import multiprocessing as mp
import os


def _first_use(home, barrier, results):
    os.environ["MLOPS_HOME"] = home
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from mlops import tracking
    from mlops.settings import get_settings

    settings = get_settings()
    barrier.wait()
    try:
        tracking.experiment_id(settings, f"model_{os.getpid()}")
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the test
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_starting_together_on_a_new_store_all_succeed(tmp_path):
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_first_use, args=(str(tmp_path / "home"), barrier, results)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(240)
    outcomes = [results.get(timeout=10) for _ in procs]
    assert outcomes == ["ok"] * 3, outcomes
