"""The training window: which daily partitions a run reads, loading them, splitting the holdout.

A partition for day d holds the data of [d, d+1). A run with a data interval trains on the `days`
complete partitions before data_interval_end; a run without one (manual or asset-triggered) ends at
the newest partition that exists. Partition files are written atomically, so existing means complete.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd

from mlops.spec import ModelSpec


class DataError(RuntimeError):
    """The data cannot be read as the spec describes it."""


@dataclass(frozen=True)
class WindowRange:
    first_day: date
    last_day: date
    anchored_by: str  # "data_interval" or "newest_partition"

    @classmethod
    def ending(cls, last_day: date, days: int, anchored_by: str) -> "WindowRange":
        return cls(last_day - timedelta(days=days - 1), last_day, anchored_by)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, datetime.min.time(), tzinfo=timezone.utc)

    @property
    def end(self) -> datetime:
        """Exclusive end: midnight after the last day."""
        return datetime.combine(self.last_day + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)

    @property
    def days(self) -> list[date]:
        n = (self.last_day - self.first_day).days + 1
        return [self.first_day + timedelta(days=i) for i in range(n)]


@dataclass
class WindowData:
    window: WindowRange
    frame: pd.DataFrame  # the columns as stored, all partitions concatenated
    row_day: np.ndarray  # partition day of each row (datetime64[D]), aligned with frame
    profile: pd.DataFrame  # one row per expected partition: day, uri, exists, rows, missing/unexpected columns
    uris: list[str] = field(default_factory=list)


def partition_uri(spec: ModelSpec, data_root: str, day: date) -> str:
    return spec.dataset.uri.format(data_root=data_root.rstrip("/"), date=day.isoformat())


def _filesystem(uri: str) -> tuple[Any, str]:
    from mlops import storage

    return storage.filesystem(uri)


def newest_partition_day(spec: ModelSpec, data_root: str) -> date | None:
    pattern_uri = spec.dataset.uri.format(data_root=data_root.rstrip("/"), date="*")
    fs, pattern = _filesystem(pattern_uri)
    regex = re.compile(re.escape(pattern).replace(r"\*", r"(\d{4}-\d{2}-\d{2})") + "$")
    days: list[date] = []
    for path in fs.glob(pattern):
        m = regex.search(path)
        if m:
            days.append(date.fromisoformat(m.group(1)))
    return max(days) if days else None


def resolve_window(spec: ModelSpec, data_root: str, data_interval_end: datetime | None) -> WindowRange:
    n = spec.dataset.window.days
    if data_interval_end is not None:
        last = data_interval_end.astimezone(timezone.utc).date() - timedelta(days=1)
        anchored_by = "data_interval"
    else:
        newest = newest_partition_day(spec, data_root)
        if newest is None:
            where = spec.dataset.uri.format(data_root=data_root, date="YYYY-MM-DD")
            raise DataError(
                f"{spec.name}: no partition found at {where}; generate or land data first "
                "(e.g. `python -m mlops.synthetic`), or trigger the run with a logical date"
            )
        last = newest
        anchored_by = "newest_partition"
    return WindowRange.ending(last, n, anchored_by)


def _read(uri: str, fmt: str) -> pd.DataFrame:
    from mlops import storage

    return storage.read_frame(uri, fmt)


def load_window(spec: ModelSpec, data_root: str, window: WindowRange) -> WindowData:
    """Read every partition of the window. Missing partitions and schema differences are recorded in
    the profile (validation decides what they mean), never silently dropped."""
    expected = set(spec.dataset.columns)
    frames, row_days, profile, uris = [], [], [], []
    for day in window.days:
        uri = partition_uri(spec, data_root, day)
        fs, path = _filesystem(uri)
        exists = fs.exists(path)
        df = _read(uri, spec.dataset.format) if exists else None
        columns = set(df.columns) if df is not None else set()
        profile.append(
            {
                "day": day.isoformat(),
                "uri": uri,
                "exists": exists,
                "rows": len(df) if df is not None else None,  # a missing partition is reported once, as missing
                "missing_columns": ",".join(sorted(expected - columns)) if exists else "",
                "unexpected_columns": ",".join(sorted(columns - expected)),
            }
        )
        if df is not None and len(df):
            frames.append(df)
            row_days.append(np.full(len(df), np.datetime64(day, "D")))
            uris.append(uri)
    frame = pd.concat(frames, ignore_index=True, sort=False) if frames else pd.DataFrame(columns=spec.dataset.columns)
    days = np.concatenate(row_days) if row_days else np.array([], dtype="datetime64[D]")
    return WindowData(window, frame, days, pd.DataFrame(profile), uris)


def fingerprint(df: pd.DataFrame) -> str:
    """Content hash of every cell, the column names and their types.

    MLflow's own pandas digest samples the first rows; this one reads everything, so changing one
    value in the last row changes it.
    """
    h = hashlib.sha256()
    h.update(repr([(str(c), str(t)) for c, t in df.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()[:32]


@dataclass
class Split:
    train: pd.DataFrame
    holdout: pd.DataFrame
    holdout_days: list[str]


def split_holdout(spec: ModelSpec, data: WindowData) -> Split:
    """Time holdout: the last days of the window (what the model will face next).
    Random holdout: a seeded sample of rows."""
    frame = data.frame[spec.dataset.columns]
    is_holdout, holdout_days = holdout_mask(spec, data.row_day, spec.evaluation.holdout.fraction,
                                            spec.evaluation.holdout.strategy, spec.trainer.seed)
    return Split(
        frame[~is_holdout].reset_index(drop=True),
        frame[is_holdout].reset_index(drop=True),
        holdout_days,
    )


def holdout_mask(spec: ModelSpec, row_day: np.ndarray, fraction: float, strategy: str,
                 seed: int) -> tuple[np.ndarray, list[str]]:
    """Which rows are held out, and (time strategy) the days they cover. Also cuts a sweep's validation
    split out of the training part, with the holdout's own strategy."""
    if strategy == "time":
        days = sorted(set(row_day.tolist()))
        k = max(1, math.ceil(len(days) * fraction))
        if len(days) <= k:
            raise DataError(
                f"{spec.name}: the window has {len(days)} non-empty day(s); a time holdout of fraction "
                f"{fraction} leaves no training data. Widen dataset.window.days."
            )
        cut = days[-k]
        return row_day >= np.datetime64(cut, "D"), [str(d) for d in days[-k:]]
    rng = np.random.default_rng(seed)
    return rng.random(len(row_day)) < fraction, []
