"""Create or update the Airflow pools named in the compute catalogue.

    python -m mlops_airflow.pools sync [--dry-run]

A task assigned to a pool that does not exist never runs, so this runs at deploy time (it writes to
the metadata DB, as `airflow pools set` does). Deferred tasks count against their pool: a deferrable
training task waiting on its pod still holds the pod's GPUs.
"""

from __future__ import annotations

import argparse
import sys


def desired_pools() -> dict[str, tuple[int, str]]:
    from mlops.compute import catalogue_path, load_catalogue
    from mlops.settings import get_settings

    catalogue = load_catalogue(catalogue_path(get_settings().compute_dir))
    users: dict[str, list[str]] = {}
    for name, pool in catalogue.pools.items():
        users.setdefault(pool.airflow_pool, []).append(name)
    return {airflow_pool: (slots, f"mlops training pods on {', '.join(sorted(users[airflow_pool]))}")
            for airflow_pool, slots in catalogue.airflow_pools().items()}


def sync(dry_run: bool = False) -> list[str]:
    from airflow.models.pool import Pool

    changes = []
    for name, (slots, description) in sorted(desired_pools().items()):
        current = Pool.get_pool(name)
        if current is not None and (current.slots, current.description, current.include_deferred) == (
                slots, description, True):
            continue
        changes.append(f"{'create' if current is None else 'update'} {name}: {slots} slots")
        if not dry_run:
            Pool.create_or_update_pool(name, slots, description, include_deferred=True)
    return changes


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m mlops_airflow.pools", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sync", help="create or update the catalogue's Airflow pools")
    s.add_argument("--dry-run", action="store_true")
    args = p.parse_args(argv)
    changes = sync(args.dry_run)
    print("\n".join(changes) if changes else "Airflow pools already match the catalogue")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
