"""The Kolmogorov distribution in numpy (mlops.drift.kolmogorov) against scipy, its oracle: the finite-n
tail against scipy.stats.kstwo.sf, the limiting one against scipy.special.kolmogorov, and the two-sample
p-values the drift statistics report against scipy.stats.ks_2samp on samples of several sizes and shapes.

Tolerance, stated once: within ABS of scipy and within REL of scipy's value. Below SMIRNOV_MAX_N values the
agreement is to rounding (about 1e-12); above it the tail comes from the Pelz-Good expansion where scipy
sums Birnbaum & Tingey's series, and the two differ by up to 5e-8 (2e-6 of the value)."""

import math

import numpy as np
import pytest
from scipy import special
from scipy import stats as sps

from mlops.drift import kolmogorov, stats

ABS, REL = 1e-7, 1e-5
ROUNDING = 1e-10  # where both sides compute the same formula


def close(ours: float, theirs: float, abs_tol: float = ABS, rel_tol: float = REL) -> bool:
    return abs(ours - theirs) <= abs_tol and abs(ours - theirs) <= rel_tol * theirs + 1e-300


def grid(n: int) -> np.ndarray:
    """x from the body to the tail the p-values use (n x^2 up to the DKW floor), plus the far ends; fewer
    points for large n, where scipy's own tail sums n terms per point."""
    points = 120 if n <= kolmogorov.SMIRNOV_MAX_N else 24
    return np.concatenate([np.sqrt(np.linspace(1e-4, stats.DKW_FLOOR, points) / n), [0.5 / n, 1.5 / n, 0.6, 0.99]])


@pytest.mark.parametrize("n", [1, 2, 7, 30, 100, 140, 141, 500, 2_000, 10_000, 10_001, 60_000, 100_001, 300_000])
def test_finite_n_tail_against_scipy_kstwo(n):
    tight = n <= kolmogorov.SMIRNOV_MAX_N
    for x in grid(n):
        ours, theirs = kolmogorov.finite_sf(n, float(x)), float(sps.kstwo.sf(x, n))
        if tight:
            assert close(ours, theirs, ROUNDING, 1e-8), (n, x, ours, theirs)
        elif theirs > 1e-12:  # one minus a CDF next to 1 has no digits left below that
            assert close(ours, theirs), (n, x, ours, theirs)
        else:
            assert ours <= 1e-12


def test_one_sided_tail_against_scipy_smirnov():
    for n in (1, 5, 141, 3_000, 10_000):
        for x in np.linspace(0.001, 0.999, 40):
            assert close(kolmogorov.smirnov_sf(n, x), float(special.smirnov(n, x)), ROUNDING, 1e-9), (n, x)


def test_limiting_distribution_against_scipy_kolmogorov():
    for z in np.linspace(0.0, 7.0, 701):
        theirs = float(special.kolmogorov(z))
        assert close(kolmogorov.limiting_sf(z), theirs, 1e-14, 1e-12), z
    d, n, m = 0.013, 40_000, 25_000
    assert stats.ks_pvalue_limiting(d, n, m) == pytest.approx(special.kolmogorov(math.sqrt(n * m / (n + m)) * d),
                                                             rel=1e-12)


def shapes(rng, n: int, m: int) -> dict:
    return {
        "same normal": (rng.normal(size=n), rng.normal(size=m)),
        "small shift": (rng.normal(size=n), rng.normal(0.01, 1, size=m)),
        "wider": (rng.normal(size=n), rng.normal(0, 1.02, size=m)),
        "heavy ties": (rng.integers(0, 20, n).astype(float), rng.integers(0, 20, m).astype(float)),
        "skewed vs normal": (rng.lognormal(0, 0.25, n), rng.normal(1.03, 0.26, m)),
        "clear drift": (rng.normal(size=n), rng.normal(0.3, 1, size=m)),
    }


@pytest.mark.parametrize("n, m", [(10_001, 10_001), (12_000, 9_000), (50_000, 30_000), (200_000, 200_000),
                                  (20_000, 30), (15_000, 150), (40_000, 2_500), (11_000, 60_000)])
def test_two_sample_p_values_against_scipy_ks_2samp(n, m):
    rng = np.random.default_rng(n + 7 * m)
    for shape, (a, b) in shapes(rng, n, m).items():
        expected = sps.ks_2samp(a, b)  # method "auto": asymptotic at these sizes, as ours
        d = stats.ks_statistic(np.sort(a), np.sort(b))
        p = stats.ks_pvalue(d, n, m)
        assert d == pytest.approx(expected.statistic, abs=1e-12), shape
        effective = round(n * m / (n + m))
        if effective * d * d < stats.DKW_FLOOR:
            assert close(p, float(expected.pvalue)), (shape, p, expected.pvalue)
        else:  # reported as the DKW bound: above scipy's value, both below 2 exp(-16)
            assert expected.pvalue <= p <= 2 * math.exp(-2 * stats.DKW_FLOOR), (shape, p, expected.pvalue)
