"""Column-by-column drift between two data sets, with a verdict per column that accounts for sample size.

A p-value alone flags everything on large data (a shift of 0.1% is "significant" on a million rows), so
verdicts rest on effect sizes: a numeric column drifts when its PSI or its normalised Wasserstein distance
passes a threshold, or when the KS statistic passes its threshold *and* is significant (which keeps small
samples from raising noise); a categorical column when its Jensen-Shannon distance or PSI passes a
threshold or when categories the reference never had take a share of the rows; either kind when its
missing-value rate moves. Too few current rows give no verdict at all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

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
    statistics: dict = field(default_factory=dict)
    drifted: bool = False
    reasons: list[str] = field(default_factory=list)  # why it drifted; empty when it did not
    notes: list[str] = field(default_factory=list)  # e.g. too few rows for a verdict on the values

    def to_dict(self) -> dict:
        return asdict(self)


class DriftInputError(ValueError):
    """The inputs cannot be compared; the message says which column and why."""


def column_kind(reference: pd.Series, current: pd.Series, name: str) -> str:
    numeric_ref = pd.api.types.is_numeric_dtype(reference) and not pd.api.types.is_bool_dtype(reference)
    numeric_cur = pd.api.types.is_numeric_dtype(current) and not pd.api.types.is_bool_dtype(current)
    if numeric_ref and numeric_cur:
        return "numeric"
    if numeric_ref != numeric_cur and (reference.notna().any() and current.notna().any()):
        numeric_side, other, other_name = (reference, current, "current") if numeric_ref else (current, reference, "reference")
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
        reference = pd.to_numeric(reference, errors="raise") if not pd.api.types.is_numeric_dtype(reference) else reference
        current = pd.to_numeric(current, errors="raise") if not pd.api.types.is_numeric_dtype(current) else current
    ref_missing, cur_missing = _missing_rate(reference), _missing_rate(current)
    ref_values, cur_values = reference.dropna(), current.dropna()
    result = ColumnDrift(name, kind, len(ref_values), len(cur_values), ref_missing, cur_missing)
    result.statistics["missing_rate_change"] = cur_missing - ref_missing
    if abs(cur_missing - ref_missing) >= thresholds.missing_rate_change:
        result.reasons.append(f"missing values {ref_missing:.1%} -> {cur_missing:.1%}")
    if len(ref_values) == 0 or len(cur_values) < thresholds.min_rows:
        result.notes.append(f"no verdict on the values: {len(cur_values)} current and {len(ref_values)} reference "
                            f"values (at least {thresholds.min_rows} current and 1 reference needed)")
    elif kind == "numeric":
        _numeric(result, ref_values.to_numpy(dtype="float64"), cur_values.to_numpy(dtype="float64"), thresholds)
    else:
        _categorical(result, ref_values, cur_values, thresholds)
    result.drifted = bool(result.reasons)
    return result


def _missing_rate(values: pd.Series) -> float:
    return float(values.isna().mean()) if len(values) else 0.0


def _numeric(result: ColumnDrift, ref: np.ndarray, cur: np.ndarray, t: Thresholds) -> None:
    ref, cur = np.sort(ref, kind="quicksort"), np.sort(cur, kind="quicksort")
    edges = stats.quantile_edges(ref, t.bins)
    psi = stats.psi_from_counts(stats.bin_counts(ref, edges), stats.bin_counts(cur, edges))
    d = stats.ks_statistic(ref, cur)
    p = stats.ks_pvalue(d, len(ref), len(cur))
    w = stats.normalised_wasserstein(ref, cur)
    result.statistics.update(psi=psi, ks_statistic=d, ks_pvalue=p, wasserstein_normalised=w)
    if psi >= t.psi:
        result.reasons.append(f"PSI {psi:.3f} >= {t.psi}")
    if w >= t.wasserstein:
        result.reasons.append(f"Wasserstein {w:.3f} reference SDs >= {t.wasserstein}")
    if d >= t.ks_statistic and p < t.ks_alpha:
        result.reasons.append(f"KS {d:.3f} >= {t.ks_statistic} (p={p:.2g})")


def _categorical(result: ColumnDrift, ref: pd.Series, cur: pd.Series, t: Thresholds) -> None:
    ref_counts = ref.astype(str).value_counts(sort=False).to_dict()
    cur_counts = cur.astype(str).value_counts(sort=False).to_dict()
    categories, p, q = stats.aligned_frequencies(ref_counts, cur_counts)
    js = stats.js_distance(p, q)
    psi = stats.psi_from_counts(p, q)
    unseen = [c for c in categories if c not in ref_counts]
    unseen_share = float(sum(cur_counts[c] for c in unseen) / q.sum())
    result.statistics.update(js_distance=js, psi=psi, unseen_categories=unseen[:20], unseen_share=unseen_share)
    if js >= t.js_distance:
        result.reasons.append(f"Jensen-Shannon {js:.3f} >= {t.js_distance}")
    if psi >= t.psi:
        result.reasons.append(f"PSI {psi:.3f} >= {t.psi}")
    if unseen_share >= t.unseen_share:
        result.reasons.append(f"{unseen_share:.1%} of rows in categories the reference never had: {unseen[:5]}")


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
