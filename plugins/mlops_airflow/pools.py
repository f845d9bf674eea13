"""Create or update the Airflow pools named in the compute catalogue, and each model's promotion pool.

    python -m mlops_airflow.pools sync [--dry-run]

A task assigned to a pool that does not exist never runs (Airflow's scheduler leaves it scheduled and
only logs a warning), so this runs at deploy time (it writes to the metadata DB, as `airflow pools set`
does); the maintenance DAG does the same through the REST API every hour. Deferred tasks count against
their pool: a deferrable training task waiting on its pod still holds the pod's GPUs.

The promotion pools (one slot each, `mlops.locks.promotion_pool`) serialise the promote and rollback
tasks of one model across workers. There is one for every spec file in the models folder, broken specs
included, so fixing a spec never leaves its tasks waiting for a pool. Pools of removed models are left
alone: a task may still be in one.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PoolChange:
    name: str
    slots: int
    description: str
    action: str  # create | update

    def __str__(self) -> str:
        return f"{self.action} {self.name}: {self.slots} slots"


def desired_pools() -> dict[str, tuple[int, str]]:
    from mlops.compute import catalogue_path, load_catalogue
    from mlops.settings import get_settings

    settings = get_settings()
    catalogue = load_catalogue(catalogue_path(settings.compute_dir))
    users: dict[str, list[str]] = {}
    for name, pool in catalogue.pools.items():
        users.setdefault(pool.airflow_pool, []).append(name)
    pools = {airflow_pool: (slots, f"mlops training pods on {', '.join(sorted(users[airflow_pool]))}")
             for airflow_pool, slots in catalogue.airflow_pools().items()}
    return {**pools, **promotion_pools(settings.models_dir)}


def promotion_pools(models_dir) -> dict[str, tuple[int, str]]:
    """One slot per model: its promote and rollback tasks take turns (see mlops.locks)."""
    from pathlib import Path

    from mlops.locks import promotion_pool
    from mlops.spec import scan_models_dir

    if not Path(models_dir).is_dir():
        raise FileNotFoundError(f"the models folder {models_dir} does not exist: set MLOPS_MODELS_DIR to the "
                                "folder of the model specs (the one the DAGs are built from)")
    return {promotion_pool(model): (1, f"mlops: one promotion or rollback of {model} at a time")
            for model in sorted(scan_models_dir(Path(models_dir)).models)}


def plan_changes(current: Callable[[str], tuple[int, str, bool] | None]) -> list[PoolChange]:
    """What to change so that every catalogue and promotion pool exists, with its slots, counting deferred tasks.
    `current(name)` gives (slots, description, include_deferred) of an existing pool, or None."""
    changes = []
    for name, (slots, description) in sorted(desired_pools().items()):
        now = current(name)
        if now != (slots, description, True):
            changes.append(PoolChange(name, slots, description, "create" if now is None else "update"))
    return changes


def sync(dry_run: bool = False) -> list[PoolChange]:
    """Through the metadata DB: for deploy scripts, not for tasks."""
    from airflow.models.pool import Pool

    def current(name):
        pool = Pool.get_pool(name)
        return None if pool is None else (pool.slots, pool.description, pool.include_deferred)

    changes = plan_changes(current)
    if not dry_run:
        for change in changes:
            Pool.create_or_update_pool(change.name, change.slots, change.description, include_deferred=True)
    return changes


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m mlops_airflow.pools", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sync", help="create or update the catalogue's Airflow pools and the promotion pools")
    s.add_argument("--dry-run", action="store_true")
    args = p.parse_args(argv)
    try:
        changes = sync(args.dry_run)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    print("\n".join(map(str, changes)) if changes else "Airflow pools already match the catalogue and the specs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
