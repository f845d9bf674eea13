"""Serialising promotions of one model.

Locally (and on one Airflow host) a file lock is enough. A multi-host deployment points
MLOPS_LOCK_DIR at storage all workers share, or swaps this for a database advisory lock; callers
only use `model_lock`.
"""

from __future__ import annotations

from contextlib import contextmanager

from mlops.settings import Settings


class LockTimeout(RuntimeError):
    pass


@contextmanager
def model_lock(settings: Settings, model: str, timeout_s: float = 120):
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
