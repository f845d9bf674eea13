"""Create or update the Airflow pools named in the compute catalogue.

    python -m mlops_airflow.pools sync [--dry-run]

A task assigned to a pool that does not exist never runs, so this runs at deploy time (it writes to
the metadata DB, as `airflow pools set` does); the maintenance DAG does the same through the REST API
every hour. Deferred tasks count against their pool: a deferrable training task waiting on its pod
still holds the pod's GPUs.
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

    catalogue = load_catalogue(catalogue_path(get_settings().compute_dir))
    users: dict[str, list[str]] = {}
    for name, pool in catalogue.pools.items():
        users.setdefault(pool.airflow_pool, []).append(name)
    return {airflow_pool: (slots, f"mlops training pods on {', '.join(sorted(users[airflow_pool]))}")
            for airflow_pool, slots in catalogue.airflow_pools().items()}


def plan_changes(current: Callable[[str], tuple[int, str, bool] | None]) -> list[PoolChange]:
    """What to change so that every catalogue pool exists with its slots and counts deferred tasks.
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
    s = sub.add_parser("sync", help="create or update the catalogue's Airflow pools")
    s.add_argument("--dry-run", action="store_true")
    args = p.parse_args(argv)
    changes = sync(args.dry_run)
    print("\n".join(map(str, changes)) if changes else "Airflow pools already match the catalogue")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
