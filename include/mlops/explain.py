"""Model-agnostic explanations as evidence: permutation importance (scikit-learn's) of each feature on the
holdout, measured with the spec's primary metric, for the challenger and the champion on the same rows; and
which features gained or lost their share of the importance between the two.

Works for any model the author's contract allows: only the scoring function is called. Importance is the drop
of the primary metric when the feature's column is shuffled (for a metric to minimise, its rise), so a larger
number always means the model leans on the feature more. Shares are importances over their positive sum.
"""

from __future__ import annotations

from html import escape
from typing import Any, Callable

import numpy as np
import pandas as pd

from mlops.metrics import METRICS
from mlops.spec import ModelSpec

Predict = Callable[[pd.DataFrame], Any]
TOP = 20  # features kept on a model version's tag and drawn in charts


class _Scored:
    """The estimator face scikit-learn's permutation_importance expects, over a plain predict function."""

    def __init__(self, predict: Predict):
        self._predict = predict

    def fit(self, *_: Any) -> "_Scored":
        return self

    def predict(self, frame: pd.DataFrame) -> Any:
        return self._predict(frame)


def importance(spec: ModelSpec, predict: Predict, features: pd.DataFrame, y: np.ndarray) -> dict[str, float]:
    """Feature -> mean drop of the primary metric over `explanation.repeats` shuffles, on at most `max_rows`
    holdout rows (a seeded sample: the same rows for challenger and champion)."""
    from sklearn.inspection import permutation_importance

    ex, ev = spec.evaluation.explanation, spec.evaluation
    metric = METRICS[ev.primary_metric]
    sign = 1.0 if ev.maximize else -1.0
    if len(features) > ex.max_rows:
        rows = np.random.default_rng(spec.trainer.seed).choice(len(features), ex.max_rows, replace=False)
        rows.sort()
        features, y = features.iloc[rows], y[rows]

    def scoring(estimator: _Scored, frame: pd.DataFrame, target: np.ndarray) -> float:
        return sign * float(metric.compute(target, np.asarray(estimator.predict(frame), dtype=float)))

    result = permutation_importance(_Scored(predict), features.reset_index(drop=True), y, scoring=scoring,
                                    n_repeats=ex.repeats, random_state=spec.trainer.seed)
    return {name: _finite(value) for name, value in zip(features.columns, result.importances_mean, strict=True)}


def _finite(value: float) -> float:
    return round(float(value), 6) if np.isfinite(value) else 0.0


def shares(values: dict[str, float]) -> dict[str, float]:
    positive = {k: max(v, 0.0) for k, v in values.items()}
    total = sum(positive.values())
    return {k: (v / total if total > 0 else 0.0) for k, v in positive.items()}


def compare(challenger: dict[str, float], champion: dict[str, float] | None) -> list[dict[str, Any]]:
    """Per feature, challenger's and champion's share of the importance and the shift, largest shift first."""
    new, old = shares(challenger), shares(champion or {})
    rows = [{"feature": f, "challenger_share": round(new.get(f, 0.0), 4),
             "champion_share": round(old.get(f, 0.0), 4) if champion is not None else None,
             "shift": round(new.get(f, 0.0) - old.get(f, 0.0), 4) if champion is not None else None}
            for f in challenger]
    return sorted(rows, key=lambda r: (-abs(r["shift"] or 0.0), -r["challenger_share"]))


def jumps(explanation: dict[str, Any] | None, limit: float) -> list[str]:
    """The features whose share moved by at least `limit`, as reasons a reviewer can read."""
    if not explanation or explanation.get("champion") is None:
        return []
    out = []
    for row in explanation.get("shifts") or []:
        if row["shift"] is not None and abs(row["shift"]) >= limit:
            way = "gained" if row["shift"] > 0 else "lost"
            out.append(f"feature '{row['feature']}' {way} importance: {row['champion_share']:.0%} of it under the "
                       f"champion, {row['challenger_share']:.0%} under the challenger (shift limit {limit:.0%})")
    return out


def evidence(spec: ModelSpec, challenger: dict[str, float], champion: dict[str, float] | None,
             rows: int) -> dict[str, Any]:
    return {"metric": spec.evaluation.primary_metric, "repeats": spec.evaluation.explanation.repeats,
            "rows": min(rows, spec.evaluation.explanation.max_rows), "challenger": challenger,
            "champion": champion, "shifts": compare(challenger, champion)}


def top(values: dict[str, float], n: int = TOP) -> dict[str, float]:
    return dict(sorted(values.items(), key=lambda kv: -kv[1])[:n])


# --- charts: the same picture in MLflow (SVG artifact), on the fleet page (inline SVG), in a request (text) ---

def svg(challenger: dict[str, float], champion: dict[str, float] | None = None, width: int = 420) -> str:
    """Horizontal bars of each feature's share (challenger dark, champion light beneath), top features only."""
    new, old = shares(challenger), shares(champion or {})
    names = list(top(new))
    label_w, bar_w, row_h = 130, width - 130 - 50, 18 if champion is not None else 14
    height = row_h * len(names) + 6
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11" role="img" aria-label="permutation importance">']
    for i, name in enumerate(names):
        y = 3 + i * row_h
        parts.append(f'<text x="{label_w - 4}" y="{y + 10}" text-anchor="end">{escape(name[:22])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{new[name] * bar_w:.1f}" height="8" fill="#3b6ea8">'
                     f'<title>challenger {new[name]:.1%}</title></rect>')
        if champion is not None:
            parts.append(f'<rect x="{label_w}" y="{y + 9}" width="{old.get(name, 0.0) * bar_w:.1f}" height="5" '
                         f'fill="#a9c4e2"><title>champion {old.get(name, 0.0):.1%}</title></rect>')
        parts.append(f'<text x="{label_w + new[name] * bar_w + 4:.1f}" y="{y + 9}">{new[name]:.0%}</text>')
    parts.append("</svg>")
    return "".join(parts)


def markdown(explanation: dict[str, Any], n: int = 10) -> list[str]:
    """A table with text bars for the approval request (Markdown shows no SVG there)."""
    rows = explanation.get("shifts") or []
    if not rows:
        return []
    with_champion = explanation.get("champion") is not None
    head = ("| feature | challenger | champion | shift |" if with_champion else "| feature | challenger |")
    out = [head, "|---|---|---|---:|" if with_champion else "|---|---|"]
    for r in sorted(rows, key=lambda r: -r["challenger_share"])[:n]:
        bar = "█" * round(r["challenger_share"] * 20) or "·"
        if with_champion:
            out.append(f"| {r['feature']} | {bar} {r['challenger_share']:.0%} | {r['champion_share']:.0%} | "
                       f"{r['shift']:+.0%} |")
        else:
            out.append(f"| {r['feature']} | {bar} {r['challenger_share']:.0%} |")
    return out
