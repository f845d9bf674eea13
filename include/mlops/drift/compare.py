"""Column-by-column drift between two data sets, with a verdict per column that accounts for sample size.

A p-value alone flags everything on large data (a shift of 0.1% is "significant" on a million rows), so
verdicts rest on effect sizes: a numeric column drifts when its PSI or its normalised Wasserstein distance
passes a threshold, or when the KS statistic passes its threshold *and* is significant (which keeps small
samples from raising noise); a categorical column when its Jensen-Shannon distance or PSI passes a
threshold or when categories the reference never had take a share of the rows; either kind when its
missing-value rate moves. Too few current rows give no verdict at all.

Small samples over many bins or categories inflate PSI and Jensen-Shannon even when nothing changed (two
samples of one distribution never have equal frequencies). The verdicts therefore use the excess over what
sampling alone gives: for k bins or categories and n, m rows, PSI is about (k-1)(1/n + 1/m) and the JS
divergence about (k-1)(1/n + 1/m) / (8 ln 2) bits under no drift (both chi-square approximations), so
`psi_excess` = PSI minus the former and `js_excess` = sqrt(max(JS divergence - the latter, 0)). For
categories, both are taken after pooling the ones the current sample should hold fewer than 5 times (the
approximation needs that; new categories are judged by their share instead). The raw statistics are
reported as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from mlops.drift import stats


@dataclass(frozen=True)
class Thresholds:
    psi: float = 0.2
    wasserstein: float = 0.3  # in reference standard deviations
    ks_statistic: float = 0.1
    ks_alpha: float = 0.01
    js_distance: float = 0.1
    unseen_share: float = 0.01
    missing_rate_change: float = 0.05
    min_rows: int = 30
    bins: int = stats.DEFAULT_BINS


@dataclass
class ColumnDrift:
    column: str
    kind: str  # numeric | categorical
    rows_reference: int
    rows_current: int
    missing_rate_reference: float
    missing_rate_current: float
    statistics: dict[str, Any] = field(default_factory=dict)
    drifted: bool = False
    reasons: list[str] = field(default_factory=list)  # why it drifted; empty when it did not
    notes: list[str] = field(default_factory=list)  # e.g. too few rows for a verdict on the values

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DriftInputError(ValueError):
    """The inputs cannot be compared; the message says which column and why."""


def column_kind(reference: pd.Series, current: pd.Series, name: str) -> str:
    numeric_ref = pd.api.types.is_numeric_dtype(reference) and not pd.api.types.is_bool_dtype(reference)
    numeric_cur = pd.api.types.is_numeric_dtype(current) and not pd.api.types.is_bool_dtype(current)
    if numeric_ref and numeric_cur:
        return "numeric"
    if numeric_ref != numeric_cur and (reference.notna().any() and current.notna().any()):
        numeric_side, other, other_name = ((reference, current, "current") if numeric_ref
                                           else (current, reference, "reference"))
        sample = other.dropna()
        bad = sample[pd.to_numeric(sample, errors="coerce").isna()]
        if len(bad):
            raise DriftInputError(f"column '{name}' is numeric on one side but the {other_name} data holds "
                                  f"non-numeric values (e.g. {bad.iloc[0]!r})")
        return "numeric"
    return "categorical"


def compare_column(name: str, reference: pd.Series, current: pd.Series, thresholds: Thresholds = Thresholds(),
                   kind: str | None = None) -> ColumnDrift:
    kind = kind or column_kind(reference, current, name)
    if kind == "numeric":
        ref_sorted, ref_missing = _sorted_values(reference)
        cur_sorted, cur_missing = _sorted_values(current)
        n_ref, n_cur = len(ref_sorted), len(cur_sorted)
    else:
        ref_missing, cur_missing = _missing_rate(reference), _missing_rate(current)
        ref_values, cur_values = reference.dropna(), current.dropna()
        n_ref, n_cur = len(ref_values), len(cur_values)
    result = ColumnDrift(name, kind, n_ref, n_cur, ref_missing, cur_missing)
    result.statistics["missing_rate_change"] = cur_missing - ref_missing
    if abs(cur_missing - ref_missing) >= thresholds.missing_rate_change:
        result.reasons.append(f"missing values {ref_missing:.1%} -> {cur_missing:.1%}")
    if n_ref == 0 or n_cur < thresholds.min_rows:
        result.notes.append(f"no verdict on the values: {n_cur} current and {n_ref} reference "
                            f"values (at least {thresholds.min_rows} current and 1 reference needed)")
    elif kind == "numeric":
        result.statistics.update(numeric_statistics(ref_sorted, cur_sorted, thresholds.bins))
        numeric_verdict(result, thresholds)
    else:
        _categorical(result, ref_values, cur_values, thresholds)
    result.drifted = bool(result.reasons)
    return result


def _sorted_values(values: pd.Series) -> tuple[np.ndarray, float]:
    """The non-missing values, sorted, and the missing rate, with one copy: NaN sorts last."""
    if not pd.api.types.is_numeric_dtype(values):
        values = pd.to_numeric(values, errors="raise")
    data = np.sort(values.to_numpy(dtype="float64", na_value=np.nan), kind="quicksort")
    valid = int(np.searchsorted(data, np.nan, side="left"))  # numpy sorts NaN after every number
    return data[:valid], ((len(data) - valid) / len(data) if len(data) else 0.0)


def _missing_rate(values: pd.Series) -> float:
    return float(values.isna().mean()) if len(values) else 0.0


def sampling_noise(k: int, n: int, m: int) -> float:
    """(k-1)(1/n + 1/m): the PSI two samples of one distribution show over k bins (chi-square approximation)."""
    return (k - 1) * (1.0 / n + 1.0 / m) if n and m else 0.0


def psi_excess(psi: float, k: int, n: int, m: int) -> float:
    return psi - sampling_noise(k, n, m)


def js_excess(js: float, k: int, n: int, m: int) -> float:
    return math.sqrt(max(js * js - sampling_noise(k, n, m) / (8 * math.log(2)), 0.0))


def numeric_statistics(ref_sorted: np.ndarray, cur_sorted: np.ndarray, bins: int) -> dict[str, float]:
    edges = stats.quantile_edges(ref_sorted, bins, presorted=True)
    d = stats.ks_statistic(ref_sorted, cur_sorted)
    n, m = len(ref_sorted), len(cur_sorted)
    psi = stats.psi_from_counts(stats.bin_counts(ref_sorted, edges, presorted=True),
                                stats.bin_counts(cur_sorted, edges, presorted=True))
    return dict(psi=psi, psi_excess=psi_excess(psi, len(edges) + 1, n, m), ks_statistic=d,
                ks_pvalue=stats.ks_pvalue(d, n, m),
                wasserstein_normalised=stats.normalised_wasserstein(ref_sorted, cur_sorted))


def numeric_verdict(result: ColumnDrift, t: Thresholds) -> None:
    s = result.statistics
    if s["psi_excess"] >= t.psi:
        result.reasons.append(f"PSI {s['psi']:.3f} ({s['psi_excess']:.3f} above sampling noise) >= {t.psi}")
    if s["wasserstein_normalised"] >= t.wasserstein:
        result.reasons.append(f"Wasserstein {s['wasserstein_normalised']:.3f} reference SDs >= {t.wasserstein}")
    if s["ks_statistic"] >= t.ks_statistic and s["ks_pvalue"] < t.ks_alpha:
        result.reasons.append(f"KS {s['ks_statistic']:.3f} >= {t.ks_statistic} (p={s['ks_pvalue']:.2g})")


MIN_EXPECTED = 5  # categories expected fewer times than this in the current sample are pooled for the verdict


def pool_rare(p: np.ndarray, q: np.ndarray, min_expected: float = MIN_EXPECTED) -> tuple[np.ndarray, np.ndarray]:
    """Pool the categories the current sample is expected to hold fewer than `min_expected` times (and
    those the reference never had) into one, as a chi-square test would: their frequencies are noise."""
    expected = p / p.sum() * q.sum()
    rare = expected < min_expected
    if not rare.any():
        return p, q
    return np.append(p[~rare], p[rare].sum()), np.append(q[~rare], q[rare].sum())


def categorical_statistics(ref_counts: Mapping[str, float], cur_counts: Mapping[str, float]) -> dict[str, Any]:
    categories, p, q = stats.aligned_frequencies(ref_counts, cur_counts)
    unseen = [c for c in categories if c not in ref_counts]
    n, m = int(p.sum()), int(q.sum())
    js, psi = stats.js_distance(p, q), stats.psi_from_counts(p, q)
    pooled_p, pooled_q = pool_rare(p, q)
    k = len(pooled_p)
    return dict(js_distance=js, psi=psi,
                js_excess=js_excess(stats.js_distance(pooled_p, pooled_q), k, n, m),
                psi_excess=psi_excess(stats.psi_from_counts(pooled_p, pooled_q), k, n, m),
                unseen_categories=unseen[:20], unseen_share=float(sum(cur_counts[c] for c in unseen) / m))


def categorical_verdict(result: ColumnDrift, t: Thresholds) -> None:
    s = result.statistics
    if s["js_excess"] >= t.js_distance:
        result.reasons.append(f"Jensen-Shannon {s['js_distance']:.3f}; {s['js_excess']:.3f} beyond sampling noise "
                              f"with rare categories pooled >= {t.js_distance}")
    if s["psi_excess"] >= t.psi:
        result.reasons.append(f"PSI {s['psi']:.3f}; {s['psi_excess']:.3f} above sampling noise with rare categories "
                              f"pooled >= {t.psi}")
    if s["unseen_share"] >= t.unseen_share:
        result.reasons.append(f"{s['unseen_share']:.1%} of rows in categories the reference never had: "
                              f"{s['unseen_categories'][:5]}")


def category_counts(values: pd.Series) -> dict[str, int]:
    """Counts per category of non-missing values, keyed by text. Integer codes read the same whether the
    column came as int64 or (with a missing value elsewhere) as float64: 3, not '3.0'."""
    if pd.api.types.is_float_dtype(values) and len(values) and bool(np.all(np.mod(values.to_numpy(), 1) == 0)):
        values = values.astype("int64")
    return cast("dict[str, int]", values.astype(str).value_counts(sort=False).to_dict())  # keys are the text


def _categorical(result: ColumnDrift, ref: pd.Series, cur: pd.Series, t: Thresholds) -> None:
    result.statistics.update(categorical_statistics(category_counts(ref), category_counts(cur)))
    categorical_verdict(result, t)


def compare_frames(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str] | None = None,
                   thresholds: Thresholds = Thresholds()) -> list[ColumnDrift]:
    if len(reference) == 0:
        raise DriftInputError("the reference data has no rows")
    if len(current) == 0:
        raise DriftInputError("the current data has no rows")
    wanted = list(columns) if columns else list(dict.fromkeys([*reference.columns, *current.columns]))
    for name in wanted:
        for side, frame in (("reference", reference), ("current", current)):
            if name not in frame.columns:
                raise DriftInputError(f"column '{name}' is missing from the {side} data "
                                      f"(it has: {', '.join(map(str, frame.columns))})")
    return [compare_column(name, reference[name], current[name], thresholds) for name in wanted]
