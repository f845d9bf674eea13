"""Deterministic synthetic data: one Parquet partition per day for the example models.

The same (dataset, day, seed, options) always gives the same bytes of data, so fingerprints,
cache hits and tests are reproducible. Nothing comes from the internet.

    python -m mlops.synthetic --dataset churn --start 2025-12-01 --end 2026-01-15 --out .local/data
    python -m mlops.synthetic --dataset demand ... --drift-from 2026-01-10
    python -m mlops.synthetic --dataset churn ... --bad nulls --bad-date 2026-01-14
    python -m mlops.synthetic --dataset churn ... --out gs://my-bucket/data     # any fsspec URL
"""

from __future__ import annotations

import argparse
import os
import sys
import zlib
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

DATASETS = ("churn", "demand")
BAD_KINDS = ("nulls", "out_of_range", "dropped_column", "renamed_column", "wrong_type", "empty_partition")
CONTRACTS = ["month-to-month", "one-year", "two-year"]
STORES = ["north", "south", "east", "west"]


def _rng(dataset: str, day: date, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(dataset.encode()), day.toordinal()])


def _churn(rng: np.random.Generator, n: int, drifted: bool) -> pd.DataFrame:
    tenure = rng.integers(0, 73, n)
    charges = rng.normal(75 if not drifted else 105, 25, n).clip(18, 200).round(2)
    contract = rng.choice(CONTRACTS, n, p=[0.5, 0.3, 0.2] if not drifted else [0.75, 0.15, 0.1])
    calls = rng.poisson(1.5 if not drifted else 3.0, n)
    logit = (
        -1.0
        - 0.04 * tenure
        + 0.02 * (charges - 70)
        + 0.35 * calls
        + np.select([contract == "month-to-month", contract == "one-year"], [1.2, 0.1], -0.8)
    )
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int64")
    return pd.DataFrame(
        {
            "tenure_months": tenure.astype("int64"),
            "monthly_charges": charges.astype("float64"),
            "contract": contract.astype(object),
            "support_calls": calls.astype("int64"),
            "churned": churned,
        }
    )


def _demand(rng: np.random.Generator, n: int, day: date, drifted: bool) -> pd.DataFrame:
    store = rng.choice(STORES, n)
    price = rng.uniform(2.0, 12.0, n).round(2)
    promo = (rng.random(n) < 0.2).astype("int64")
    temperature = rng.normal(12 if not drifted else 24, 6, n).round(1)
    dow = np.full(n, day.weekday(), dtype="int64")
    base = np.select([store == "north", store == "south", store == "east"], [40, 55, 48], 35)
    units = base - 3.2 * price + 14 * promo + 0.6 * temperature + 4 * (dow >= 5) + rng.normal(0, 4, n)
    return pd.DataFrame(
        {
            "store": store.astype(object),
            "price": price.astype("float64"),
            "promo": promo,
            "temperature": temperature.astype("float64"),
            "day_of_week": dow,
            "units_sold": units.clip(0).round(1).astype("float64"),
        }
    )


def _inject(df: pd.DataFrame, dataset: str, kind: str, rng: np.random.Generator) -> pd.DataFrame:
    df = df.copy()
    column = "monthly_charges" if dataset == "churn" else "price"
    if kind == "nulls":
        df.loc[rng.random(len(df)) < 0.3, column] = np.nan
    elif kind == "out_of_range":
        df.loc[df.index[::5], column] = -999.0
    elif kind == "dropped_column":
        df = df.drop(columns=[column])
    elif kind == "renamed_column":
        df = df.rename(columns={column: f"{column}_v2"})
    elif kind == "wrong_type":
        df[column] = df[column].map(lambda v: f"{v:.2f} EUR")
    elif kind == "empty_partition":
        df = df.iloc[0:0]
    else:
        raise ValueError(f"unknown bad-data kind '{kind}'; use one of {BAD_KINDS}")
    return df


def generate_partition(
    dataset: str,
    day: date,
    *,
    seed: int = 7,
    rows: int | None = None,
    drift_from: date | None = None,
    bad: str | None = None,
) -> pd.DataFrame:
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset '{dataset}'; use one of {DATASETS}")
    rng = _rng(dataset, day, seed)
    drifted = drift_from is not None and day >= drift_from
    if dataset == "churn":
        df = _churn(rng, rows or 400, drifted)
    else:
        df = _demand(rng, rows or 300, day, drifted)
    return _inject(df, dataset, bad, rng) if bad else df


TARGETS = {"churn": "churned", "demand": "units_sold"}


def _under(root: str | Path, *parts: str) -> Path | str:
    """A local root gives a Path, as always; a URL root (gs://bucket/data) a URL string."""
    from mlops import storage

    if storage.is_url(str(root)):
        return storage.join(str(root), *parts)
    return Path(root).joinpath(*parts)


def labels_path(root: str | Path, dataset: str, day: date) -> Path | str:
    """Where a day's labels land, apart from its features: `row` (position in the partition) and the target."""
    return _under(root, f"{dataset}_labels", f"date={day.isoformat()}", "part-0.parquet")


def labels_of(df: pd.DataFrame, dataset: str) -> pd.DataFrame:
    target = TARGETS[dataset]
    truth = df[target] if target in df.columns else pd.Series(dtype="float64")
    return pd.DataFrame({"row": range(len(truth)), target: truth.to_numpy()})


def partition_path(root: str | Path, dataset: str, day: date) -> Path | str:
    return _under(root, dataset, f"date={day.isoformat()}", "part-0.parquet")


def write_partition(df: pd.DataFrame, path: Path | str) -> None:
    """Write then rename, so a reader never sees half a partition (an object is written whole)."""
    if not isinstance(path, Path):
        from mlops import storage

        storage.write_frame(df, path, "parquet")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def generate(
    dataset: str,
    start: date,
    end: date,
    out: str | Path,
    *,
    seed: int = 7,
    rows: int | None = None,
    drift_from: date | None = None,
    bad: str | None = None,
    bad_date: date | None = None,
) -> list[Path | str]:
    """Write partitions for every day in [start, end], and each day's labels beside them (monitoring
    joins them with the predictions, as if they had arrived later); returns the partitions' paths."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    if bad and bad_date is None:
        raise ValueError("--bad needs --bad-date: the day whose partition gets the bad data")
    written = []
    day = start
    while day <= end:
        kind = bad if bad and day == bad_date else None
        df = generate_partition(dataset, day, seed=seed, rows=rows, drift_from=drift_from, bad=kind)
        path = partition_path(out, dataset, day)
        write_partition(df, path)
        write_partition(labels_of(df, dataset), labels_path(out, dataset, day))
        written.append(path)
        day += timedelta(days=1)
    return written


def _main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m mlops.synthetic", description="Write synthetic daily partitions.")
    p.add_argument("--dataset", choices=DATASETS, action="append", required=True, help="repeat for several")
    p.add_argument("--start", type=date.fromisoformat, required=True)
    p.add_argument("--end", type=date.fromisoformat, required=True)
    p.add_argument("--out", required=True,
                   help="data root, a folder or a URL (gs://bucket/data); "
                        "partitions go to OUT/<dataset>/date=YYYY-MM-DD/")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--rows", type=int, help="rows per partition (default 400 churn, 300 demand)")
    p.add_argument("--drift-from", type=date.fromisoformat, help="shift feature distributions from this day on")
    p.add_argument("--bad", choices=BAD_KINDS, help="inject this kind of bad data ...")
    p.add_argument("--bad-date", type=date.fromisoformat, help="... into this day's partition")
    a = p.parse_args(argv)
    try:
        for ds in a.dataset:
            paths = generate(
                ds, a.start, a.end, a.out, seed=a.seed, rows=a.rows,
                drift_from=a.drift_from, bad=a.bad, bad_date=a.bad_date,
            )
            print(f"{ds}: wrote {len(paths)} partitions under {_under(a.out, ds)}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
