"""The reference profile: what monitoring keeps of a model's training data instead of the data itself.

Stored as JSON with each model version. Per numeric column: row and missing counts, mean and standard
deviation, the reference's quantiles on a grid of QUANTILE_STEPS + 1 points (0, 1/K, ..., 1), and the PSI
bins with their counts. Per categorical column: row and missing counts and the frequency of each category
(the MAX_CATEGORIES most frequent; the rest pooled under OTHER).

Against a profile, some statistics stay exact and some become approximate, with these bounds (K the grid
steps, n the reference's non-missing rows, R the reference's range max - min; tested in
tests/unit/test_drift_profile.py):
* PSI, missing-rate change: exact. Categorical PSI and Jensen-Shannon: exact up to MAX_CATEGORIES
  categories; beyond, the tail is compared as one pooled category (its members are not told apart).
* KS statistic: the reference CDF is read off the quantile grid, so |D_profile - D_exact| <= 1/K + 1/n;
  the p-value is the limiting Kolmogorov distribution's at sqrt(n_eff) * D_profile, whatever the sizes:
  it only serves the verdict's significance check, and D itself is approximate here.
* Wasserstein: the same CDF error integrated over the reference's range, so
  |W_profile - W_exact| <= (1/K + 1/n) * R before normalising by the stored standard deviation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlops.drift import stats
from mlops.drift.compare import (
    ColumnDrift,
    Thresholds,
    _sorted_values,
    categorical_statistics,
    categorical_verdict,
    category_counts,
    column_kind,
    numeric_verdict,
    psi_excess,
)

PROFILE_FORMAT = "mlops.drift.profile/v1"
QUANTILE_STEPS = 1000
MAX_CATEGORIES = 1000
DEFAULT_THRESHOLDS = Thresholds()  # frozen: one shared instance is safe as a default
OTHER = "__other__"

if TYPE_CHECKING:
    from mlops.spec import ModelSpec


def spec_kinds(spec: ModelSpec) -> dict[str, str]:
    """Column kinds from a model spec's features: `category` is categorical, the rest numeric."""
    return {name: "categorical" if f.type == "category" else "numeric" for name, f in spec.dataset.features.items()}


def ks_tolerance(n_reference: int, steps: int = QUANTILE_STEPS) -> float:
    return 1.0 / steps + 1.0 / max(n_reference, 1)


def build_profile(frame: pd.DataFrame, kinds: dict[str, str] | None = None,
                  bins: int = stats.DEFAULT_BINS) -> dict[str, Any]:
    """`kinds` maps column -> numeric|categorical (from the spec); guessed from the dtypes otherwise."""
    kinds = kinds or {c: column_kind(frame[c], frame[c], c) for c in frame.columns}
    columns: dict[str, dict[str, Any]] = {}
    for name, kind in kinds.items():
        values = frame[name]
        present = values.dropna()
        entry: dict[str, Any] = {"kind": kind, "rows": int(len(present)), "missing": int(values.isna().sum())}
        if kind == "numeric" and len(present):
            data = np.sort(pd.to_numeric(present).to_numpy(dtype="float64"), kind="quicksort")
            edges = stats.quantile_edges(data, bins, presorted=True)
            entry.update(mean=float(data.mean()), std=float(data.std()),
                         quantiles=np.quantile(data, np.linspace(0.0, 1.0, QUANTILE_STEPS + 1)).tolist(),
                         psi_edges=edges.tolist(), psi_counts=stats.bin_counts(data, edges).tolist())
        elif kind == "categorical":
            counts = pd.Series(category_counts(present)).sort_values(ascending=False, kind="stable")
            kept = counts.iloc[:MAX_CATEGORIES]
            entry["frequencies"] = {str(k): int(v) for k, v in kept.items()}
            if len(counts) > MAX_CATEGORIES:
                entry["frequencies"][OTHER] = int(counts.iloc[MAX_CATEGORIES:].sum())
        columns[name] = entry
    return {"format": PROFILE_FORMAT, "rows": int(len(frame)), "quantile_steps": QUANTILE_STEPS, "bins": bins,
            "columns": columns}


def numeric_statistics_against(entry: dict[str, Any], cur_sorted: np.ndarray) -> dict[str, float]:
    """Statistics of sorted current values against a column's profile, in O(m log K + K log m)."""
    q = np.asarray(entry["quantiles"], dtype="float64")
    steps = len(q) - 1
    edges = np.asarray(entry["psi_edges"], dtype="float64")
    m, n = len(cur_sorted), entry["rows"]
    psi = stats.psi_from_counts(np.asarray(entry["psi_counts"]), stats.bin_counts(cur_sorted, edges, presorted=True))
    # KS: the reference CDF read off the grid (steps of 1/K) against the exact current CDF, at both
    # sides' jump points: every current value (after it, and just before it) and every grid point.
    values, counts = stats.distinct_counts(cur_sorted)
    upto = np.arange(1, len(values) + 1) if counts is None else counts
    grid_at = np.clip((np.searchsorted(q, values, side="right") - 1) / steps, 0.0, 1.0)
    grid_before = np.clip((np.searchsorted(q, values, side="left") - 1) / steps, 0.0, 1.0)
    cur_at = upto / m
    cur_before = np.concatenate([[0], upto[:-1]]) / m
    grid_self = np.clip((np.searchsorted(q, q, side="right") - 1) / steps, 0.0, 1.0)  # ties share one step
    grid_self_before = np.clip((np.searchsorted(q, q, side="left") - 1) / steps, 0.0, 1.0)
    cur_at_grid = np.searchsorted(cur_sorted, q, side="right") / m
    cur_before_grid = np.searchsorted(cur_sorted, q, side="left") / m
    d = float(max(np.max(np.abs(grid_at - cur_at)), np.max(np.abs(grid_before - cur_before)),
                  np.max(np.abs(grid_self - cur_at_grid)), np.max(np.abs(grid_self_before - cur_before_grid))))
    # W1 = integral over u of |Q_ref(u) - Q_cur(u)|: Q_ref linear between grid points, Q_cur the sorted
    # values on ((j-1)/m, j/m], taken at each step's midpoint.
    q_ref = np.interp((np.arange(m) + 0.5) / m, np.linspace(0.0, 1.0, len(q)), q)
    w = float(np.mean(np.abs(q_ref - cur_sorted)))
    scale = entry["std"] if entry["std"] > 0 else 1.0
    return dict(psi=psi, psi_excess=psi_excess(psi, len(edges) + 1, n, m), ks_statistic=d,
                ks_pvalue=stats.ks_pvalue_limiting(d, n, m), wasserstein_normalised=w / scale)


def compare_to_profile(profile: dict[str, Any], current: pd.DataFrame,
                       thresholds: Thresholds = DEFAULT_THRESHOLDS) -> list[ColumnDrift]:
    results = []
    for name, entry in profile["columns"].items():
        if name not in current.columns:
            from mlops.drift.compare import DriftInputError

            raise DriftInputError(f"column '{name}' of the reference profile is missing from the current data")
        values = current[name]
        cur_missing = float(values.isna().mean()) if len(values) else 0.0
        total_ref = entry["rows"] + entry["missing"]
        ref_missing = entry["missing"] / total_ref if total_ref else 0.0
        present = values.dropna()
        result = ColumnDrift(name, entry["kind"], entry["rows"], len(present), ref_missing, cur_missing)
        result.statistics["missing_rate_change"] = cur_missing - ref_missing
        if abs(cur_missing - ref_missing) >= thresholds.missing_rate_change:
            result.reasons.append(f"missing values {ref_missing:.1%} -> {cur_missing:.1%}")
        if entry["rows"] == 0 or len(present) < thresholds.min_rows:
            result.notes.append(f"no verdict on the values: {len(present)} current and {entry['rows']} reference "
                                f"values (at least {thresholds.min_rows} current and 1 reference needed)")
        elif entry["kind"] == "numeric":
            cur, _ = _sorted_values(present)
            result.statistics.update(numeric_statistics_against(entry, cur))
            numeric_verdict(result, thresholds)
        else:
            counts = category_counts(present)
            known = entry["frequencies"]
            if OTHER in known:  # pool what the profile pooled
                pooled = {k: v for k, v in counts.items() if k in known}
                pooled[OTHER] = pooled.get(OTHER, 0) + sum(v for k, v in counts.items() if k not in known)
                counts = pooled
            result.statistics.update(categorical_statistics(known, counts))
            categorical_verdict(result, thresholds)
        result.drifted = bool(result.reasons)
        results.append(result)
    return results
