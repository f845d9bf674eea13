"""Drift against a stored reference profile: exact where the profile keeps exact counts, and within the
documented bounds of the exact two-sample figures where it keeps a quantile grid."""

import json

import numpy as np
import pandas as pd
import pytest

from mlops.drift import profile as prof
from mlops.drift.compare import compare_frames


def frames(seed: int, n_ref: int, n_cur: int, shift: float = 0.0, digits: int | None = None):
    rng = np.random.default_rng(seed)

    def make(n, loc):
        x = rng.gamma(2.0, 1.5, size=n) + loc  # skewed
        x = x.round(digits) if digits is not None else x
        y = rng.normal(loc * 3, 1.0, size=n)
        s = rng.choice(["a", "b", "c", "d"], p=[0.4, 0.3, 0.2, 0.1] if loc == 0 else [0.25, 0.25, 0.25, 0.25], size=n)
        frame = pd.DataFrame({"x": x, "y": y, "s": s})
        frame.loc[rng.random(n) < 0.02, "y"] = np.nan
        return frame

    return make(n_ref, 0.0), make(n_cur, shift)


@pytest.mark.parametrize("seed, n_ref, n_cur, shift, digits", [
    (0, 5000, 3000, 0.0, None), (1, 20000, 20000, 0.3, None), (2, 3000, 8000, 1.0, 1), (3, 50000, 2000, 0.05, 0),
    (4, 1500, 1500, 0.0, 2),
])
def test_profile_statistics_are_exact_or_within_their_bounds(seed, n_ref, n_cur, shift, digits):
    ref, cur = frames(seed, n_ref, n_cur, shift, digits)
    kinds = {"x": "numeric", "y": "numeric", "s": "categorical"}
    stored = json.loads(json.dumps(prof.build_profile(ref, kinds)))  # what comes back from MLflow
    exact = {r.column: r for r in compare_frames(ref, cur)}
    approx = {r.column: r for r in prof.compare_to_profile(stored, cur)}
    for name in ("x", "y"):
        e, a = exact[name].statistics, approx[name].statistics
        n = exact[name].rows_reference
        assert a["psi"] == pytest.approx(e["psi"], abs=1e-12)
        assert a["missing_rate_change"] == pytest.approx(e["missing_rate_change"], abs=1e-12)
        assert abs(a["ks_statistic"] - e["ks_statistic"]) <= prof.ks_tolerance(n) + 1e-12
        values = ref[name].dropna()
        bound = prof.ks_tolerance(n) * (values.max() - values.min()) / values.std(ddof=0)
        assert abs(a["wasserstein_normalised"] - e["wasserstein_normalised"]) <= bound
    for key in ("js_distance", "psi", "unseen_share"):
        assert approx["s"].statistics[key] == pytest.approx(exact["s"].statistics[key], abs=1e-12)
    assert {c: r.drifted for c, r in approx.items()} == {c: r.drifted for c, r in exact.items()}


def test_many_categories_are_pooled_the_same_way_on_both_sides():
    # A long tail (3000 ids, Zipf-like): the profile keeps the 1000 most frequent and pools the rest.
    rng = np.random.default_rng(9)
    weights = 1.0 / np.arange(1, 3001) ** 1.1
    weights /= weights.sum()

    def sample(n):
        return pd.DataFrame({"s": rng.choice(3000, size=n, p=weights).astype(str)})

    ref, cur = sample(200_000), sample(20_000)
    stored = prof.build_profile(ref, {"s": "categorical"})
    assert len(stored["columns"]["s"]["frequencies"]) == prof.MAX_CATEGORIES + 1
    (result,) = prof.compare_to_profile(stored, cur)
    (exact,) = compare_frames(ref, cur)
    assert not result.drifted and not exact.drifted
    assert result.statistics["js_excess"] == pytest.approx(exact.statistics["js_excess"], abs=0.02)


def test_profile_is_small_and_keeps_no_rows():
    ref, _ = frames(5, 100_000, 10)
    stored = json.dumps(prof.build_profile(ref))
    assert len(stored) < 100_000 and stored.count(",") < 5000
