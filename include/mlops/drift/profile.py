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
  the p-value is the asymptotic one (Kolmogorov distribution) from D_profile and the true sample sizes,
  whatever the sizes: it only serves the verdict's significance check, and the exact lattice-path
  computation costs O(n_ref * n_cur).
* Wasserstein: the same CDF error integrated over the reference's range, so
  |W_profile - W_exact| <= (1/K + 1/n) * R before normalising by the stored standard deviation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlops.drift import stats
from mlops.drift.compare import (
    ColumnDrift,
    Thresholds,
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
OTHER = "__other__"


def spec_kinds(spec) -> dict[str, str]:
    """Column kinds from a model spec's features: `category` is categorical, the rest numeric."""
    return {name: "categorical" if f.type == "category" else "numeric" for name, f in spec.dataset.features.items()}


def ks_tolerance(n_reference: int, steps: int = QUANTILE_STEPS) -> float:
    return 1.0 / steps + 1.0 / max(n_reference, 1)


def build_profile(frame: pd.DataFrame, kinds: dict[str, str] | None = None, bins: int = stats.DEFAULT_BINS) -> dict:
    """`kinds` maps column -> numeric|categorical (from the spec); guessed from the dtypes otherwise."""
    kinds = kinds or {c: column_kind(frame[c], frame[c], c) for c in frame.columns}
    columns = {}
    for name, kind in kinds.items():
        values = frame[name]
        present = values.dropna()
        entry = {"kind": kind, "rows": int(len(present)), "missing": int(values.isna().sum())}
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


def profile_cdf(quantiles: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The reference CDF read off its quantile grid (right-continuous steps of 1/K)."""
    steps = len(quantiles) - 1
    below = np.searchsorted(quantiles, x, side="right")  # grid points <= x: 0 below the minimum, K+1 from the maximum
    return np.clip((below - 1) / steps, 0.0, 1.0)


def numeric_statistics_against(entry: dict, cur_sorted: np.ndarray) -> dict:
    q = np.asarray(entry["quantiles"], dtype="float64")
    edges = np.asarray(entry["psi_edges"], dtype="float64")
    psi = stats.psi_from_counts(np.asarray(entry["psi_counts"]), stats.bin_counts(cur_sorted, edges))
    points = np.concatenate([q, cur_sorted])
    cdf_cur = np.searchsorted(cur_sorted, points, side="right") / len(cur_sorted)
    d = float(np.max(np.abs(profile_cdf(q, points) - cdf_cur)))
    # W1 = integral over u of |Q_ref(u) - Q_cur(u)|, Q_ref linear between grid points, Q_cur exact steps.
    u = np.union1d(np.linspace(0.0, 1.0, len(q)), np.arange(1, len(cur_sorted)) / len(cur_sorted))
    mid = (u[:-1] + u[1:]) / 2
    q_ref = np.interp(mid, np.linspace(0.0, 1.0, len(q)), q)
    q_cur = cur_sorted[np.minimum((mid * len(cur_sorted)).astype(int), len(cur_sorted) - 1)]
    w = float(np.sum(np.abs(q_ref - q_cur) * np.diff(u)))
    scale = entry["std"] if entry["std"] > 0 else 1.0
    n = entry["rows"]
    return dict(psi=psi, psi_excess=psi_excess(psi, len(edges) + 1, n, len(cur_sorted)), ks_statistic=d,
                ks_pvalue=stats.ks_pvalue_asymptotic(d, n, len(cur_sorted)), wasserstein_normalised=w / scale)


def compare_to_profile(profile: dict, current: pd.DataFrame, thresholds: Thresholds = Thresholds()) -> list[ColumnDrift]:
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
            cur = np.sort(pd.to_numeric(present).to_numpy(dtype="float64"), kind="quicksort")
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
