"""The drift statistics against scipy (the oracle; the code under test never calls these functions) on
random and adversarial inputs, and PSI against its definition."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from mlops.drift import stats
from mlops.drift.compare import Thresholds, compare_column

TOL = 1e-6


def ks(a, b):
    a, b = np.sort(np.asarray(a, dtype="float64")), np.sort(np.asarray(b, dtype="float64"))
    d = stats.ks_statistic(a, b)
    return d, stats.ks_pvalue(d, len(a), len(b))


def check_against_scipy(a, b):
    d, p = ks(a, b)
    expected = sps.ks_2samp(a, b)
    assert d == pytest.approx(expected.statistic, abs=TOL)
    assert p == pytest.approx(expected.pvalue, abs=TOL)
    w = stats.wasserstein(np.sort(a), np.sort(b))
    assert w == pytest.approx(sps.wasserstein_distance(a, b), rel=TOL, abs=TOL)


@pytest.mark.parametrize("seed", range(40))
def test_random_samples_of_every_size_regime(seed):
    rng = np.random.default_rng(seed)
    m, n = (int(x) for x in rng.integers(1, 400, size=2))
    digits = int(rng.integers(0, 4))  # few digits: many ties
    a = rng.normal(size=m).round(digits)
    b = (rng.normal(size=n) * rng.uniform(0.5, 2) + rng.uniform(-1, 1)).round(digits)
    check_against_scipy(a, b)


@pytest.mark.parametrize("sizes", [(10_000, 10_000), (10_000, 6_000), (12_000, 9_000), (50_000, 30_000)])
def test_exact_and_asymptotic_p_values_at_the_switch(sizes):
    rng = np.random.default_rng(sum(sizes))
    check_against_scipy(rng.normal(size=sizes[0]), rng.normal(0.02, 1, size=sizes[1]))


@pytest.mark.parametrize("a, b", [
    ([1.0], [1.0]),                                   # a single row each, equal
    ([1.0], [2.0]),                                   # a single row each, apart
    ([5.0] * 50, [5.0] * 70),                         # both constant, the same
    ([5.0] * 50, [6.0] * 70),                         # both constant, apart
    ([0.0] * 30 + [1.0] * 30, [0.0] * 10 + [1.0] * 50),  # two values only
    ([1e150, -1e150, 3e149, 0.0], [2e150, 1e149, -5e149]),  # huge values
    (list(range(100)), [1e-12 * i for i in range(3)]),   # tiny against wide
    ([1.0, 2.0, 3.0], [10.0, 11.0]),                   # all reference values below the current ones
    ([10.0, 11.0, 12.0, 13.0], [1.0, 2.0]),            # and above
    ([1.0, 2.0, 2.0, 3.0], [1.0, 2.0, 2.0, 3.0]),      # identical, with ties
    ([0.0, 1.0, 1.0, 1.0, 2.0], [1.0, 1.0, 1.0]),      # the current sample sits on a reference tie
])
def test_adversarial_inputs(a, b):
    check_against_scipy(np.array(a, dtype="float64"), np.array(b, dtype="float64"))


def test_wasserstein_is_normalised_by_the_reference_sd_and_constant_references_do_not_divide_by_zero():
    a, b = np.sort(np.array([0.0, 2.0, 4.0])), np.sort(np.array([1.0, 3.0, 5.0]))
    assert stats.normalised_wasserstein(a, b) == pytest.approx(1.0 / np.std(a))
    const = np.array([3.0, 3.0])
    assert stats.normalised_wasserstein(const, np.array([4.0, 4.0])) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(10))
def test_jensen_shannon_distance_base_2(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 12))
    p, q = rng.integers(0, 50, size=k).astype(float), rng.integers(0, 50, size=k).astype(float)
    p[0] += 1
    q[-1] += 1  # at least one count each; zeros elsewhere are allowed
    assert stats.js_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2), abs=TOL)


def test_js_of_disjoint_categories_is_one_and_of_equal_ones_zero():
    assert stats.js_distance(np.array([5.0, 0.0]), np.array([0.0, 7.0])) == pytest.approx(1.0)
    assert stats.js_distance(np.array([2.0, 4.0]), np.array([1.0, 2.0])) == pytest.approx(0.0, abs=1e-12)


def test_psi_by_its_definition_with_epsilon_for_empty_bins():
    ref, cur = np.array([50.0, 50.0, 0.0]), np.array([25.0, 25.0, 50.0])
    p = np.array([0.5, 0.5, stats.EPSILON])
    q = np.array([0.25, 0.25, 0.5])
    assert stats.psi_from_counts(ref, cur) == pytest.approx(float(np.sum((q - p) * np.log(q / p))))
    assert stats.psi_from_counts(ref, ref) == 0.0


def test_quantile_bins_put_a_tenth_of_the_reference_in_each_bin():
    ref = np.arange(1000, dtype="float64")
    edges = stats.quantile_edges(ref, 10)
    assert len(edges) == 9 and list(stats.bin_counts(ref, edges)) == [100] * 10
    assert list(stats.quantile_edges(np.array([1.0] * 99 + [2.0]), 10)) == [1.0]  # nine equal edges, one kept


def test_a_column_with_nans_is_compared_on_its_values_and_its_missing_rate():
    rng = np.random.default_rng(3)
    ref = pd.Series(rng.normal(size=500))
    cur = pd.Series(rng.normal(size=500))
    cur[:100] = np.nan
    result = compare_column("x", ref, cur)
    expected = sps.ks_2samp(ref.dropna(), cur.dropna())
    assert result.statistics["ks_statistic"] == pytest.approx(expected.statistic, abs=TOL)
    assert result.statistics["missing_rate_change"] == pytest.approx(0.2)
    assert result.drifted and result.reasons == ["missing values 0.0% -> 20.0%"]


def test_effect_sizes_decide_not_p_values_on_large_samples():
    rng = np.random.default_rng(4)
    ref, cur = pd.Series(rng.normal(size=200_000)), pd.Series(rng.normal(0.02, 1, size=200_000))
    result = compare_column("x", ref, cur)
    assert result.statistics["ks_pvalue"] < 0.01  # "significant"...
    assert not result.drifted                       # ...but a 0.02 SD shift is no drift
    shifted = compare_column("x", ref, pd.Series(rng.normal(0.5, 1, size=200_000)))
    assert shifted.drifted


def test_small_samples_get_no_verdict_on_their_values():
    result = compare_column("x", pd.Series(np.arange(100.0)), pd.Series([500.0] * 5), Thresholds(min_rows=30))
    assert not result.drifted and "no verdict" in result.notes[0]


def test_unseen_categories_are_drift():
    ref = pd.Series(["a"] * 50 + ["b"] * 50)
    cur = pd.Series(["a"] * 45 + ["b"] * 45 + ["c"] * 10)
    result = compare_column("s", ref, cur)
    assert result.kind == "categorical" and result.statistics["unseen_categories"] == ["c"]
    assert result.statistics["unseen_share"] == pytest.approx(0.1) and result.drifted
    assert math.isfinite(result.statistics["psi"])


@pytest.mark.parametrize("seed", range(15))
def test_chunked_passes_give_the_same_statistics(seed, monkeypatch):
    monkeypatch.setattr(stats, "CHUNK", 7)  # long inputs go through in chunks: make every input long
    rng = np.random.default_rng(100 + seed)
    m, n = (int(x) for x in rng.integers(1, 80, size=2))
    digits = int(rng.integers(0, 3))
    check_against_scipy(rng.normal(size=m).round(digits), rng.normal(0.3, 1.2, size=n).round(digits))


def test_integer_category_codes_read_the_same_with_a_missing_value_on_one_side():
    rng = np.random.default_rng(8)
    codes = rng.integers(1, 5, 1000)
    current = pd.Series(codes.astype("float64"))
    current[0] = np.nan  # one null makes the column float64
    result = compare_column("store", pd.Series(codes), current, kind="categorical")
    assert result.statistics["unseen_share"] == 0 and not result.drifted
