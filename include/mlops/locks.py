"""Serialising what moves a model's champion alias: promotions and rollbacks (and any later deploy step).

Two guards, for two scopes:

* Across hosts, the model's Airflow pool of one slot (`promotion_pool`), which the promote and rollback
  tasks take. The scheduler queues a task only while its pool has a free slot, and decides that under a row
  lock on the pool table, so at most one of these tasks per model is queued or running, however many Celery
  workers (or schedulers) there are. Chosen over a PostgreSQL advisory lock: tasks in Airflow 3 may not
  reach the metadata DB, so an advisory lock would need a database of its own, with credentials on every
  worker; the pool needs nothing Airflow does not already have, and a waiting task holds no worker slot.
  A task whose pool does not exist is never queued (Airflow 3.3's scheduler only logs "Tasks using
  non-existent pool ... will not be scheduled"), so `python -m mlops_airflow.pools sync` creates one per
  spec at deploy time (and hourly, from the maintenance DAG), and the DAG integrity test checks that every
  pool a task names is one that sync creates.
* On one host, the file lock `model_lock`: for whatever the scheduler does not order (dag.test() ignores
  pools; the `mlops.registry` CLI runs outside Airflow), and as a second guard inside the tasks. It is
  correct on one machine, or on shared storage whose locks work (MLOPS_LOCK_DIR; NFS flock often does not).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mlops.settings import Settings

POOL_PREFIX = "mlops-promotion-"


class LockTimeout(RuntimeError):
    pass


def promotion_pool(model: str) -> str:
    """The Airflow pool (one slot) that the tasks moving `model`'s champion alias take."""
    return f"{POOL_PREFIX}{model}"


@contextmanager
def model_lock(settings: Settings, model: str, timeout_s: float = 120) -> Iterator[None]:
    from filelock import FileLock, Timeout

    settings.lock_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(settings.lock_dir / f"{model}.promotion.lock"))
    try:
        lock.acquire(timeout=timeout_s)
    except Timeout:
        raise LockTimeout(
            f"{model}: another promotion has held the lock {lock.lock_file} for over {timeout_s}s; "
            "check for a stuck promote task, then retry"
        ) from None
    try:
        yield
    finally:
        lock.release()
