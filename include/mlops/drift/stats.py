"""Drift statistics between a reference sample and a current sample, computed exactly with numpy.

Definitions (the docs repeat them; tests check them against scipy, which is the oracle, not the engine):

Numeric columns (missing values dropped first; their rate is compared separately):
* PSI over reference-quantile bins: inner edges are the reference's quantiles at k/B, k = 1..B-1 (numpy's
  linear interpolation), duplicates dropped; bin k holds edge[k-1] < x <= edge[k]. With proportions p
  (reference) and q (current), empty bins take the proportion EPSILON on either side (no renormalisation):
  PSI = sum((q - p) * ln(q / p)).
* Two-sample Kolmogorov-Smirnov: D = max |F_ref(x) - F_cur(x)| over both samples' values, and the two-sided
  p-value: exact (lattice paths) when both samples have at most EXACT_KS_MAX_N values, otherwise from the
  Kolmogorov distribution with n = round(n_ref * n_cur / (n_ref + n_cur)) (as scipy.stats.ks_2samp does;
  kolmogorov.py computes it in numpy, so the CLI never imports scipy).
* Wasserstein-1 distance between the two empirical distributions, divided by the reference's standard
  deviation (population, ddof=0); by 1 when the reference is constant.

Categorical columns (missing values as their own concern, not a category):
* Jensen-Shannon distance, base 2: sqrt of the JS divergence between the category frequencies, in [0, 1].
* PSI over categories, the union of both sides' categories; a category unseen in the reference gets the
  proportion EPSILON there (and so contributes a large term: new categories are drift).

Both: the change in missing-value rate, current minus reference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from mlops.drift import kolmogorov

EPSILON = 1e-4
DEFAULT_BINS = 10
EXACT_KS_MAX_N = 10_000


# -- numeric ----------------------------------------------------------------------------------------------
def quantile_edges(reference: np.ndarray, bins: int = DEFAULT_BINS, *, presorted: bool = False) -> np.ndarray:
    """Inner bin edges from the reference's quantiles (numpy's linear interpolation), duplicates dropped."""
    if bins < 2:
        raise ValueError(f"PSI needs at least 2 bins, got {bins}")
    q = np.arange(1, bins) / bins
    if not presorted:
        return np.unique(np.quantile(reference, q))
    position = q * (len(reference) - 1)  # read straight off the sorted values, as np.quantile would
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, len(reference) - 1)
    low, high = reference[below], reference[above]
    return np.unique(low + (high - low) * (position - below))


def bin_counts(values: np.ndarray, edges: np.ndarray, *, presorted: bool = False) -> np.ndarray:
    """Counts per bin; bin k holds edges[k-1] < x <= edges[k] (bin 0 is everything <= edges[0]).
    Sorted values are counted by looking the edges up in them, not the other way round."""
    if presorted:
        return np.diff(np.searchsorted(values, edges, side="right"), prepend=0, append=len(values))
    return np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)


def psi_from_counts(reference_counts: np.ndarray, current_counts: np.ndarray, epsilon: float = EPSILON) -> float:
    p = _proportions(reference_counts, epsilon)
    q = _proportions(current_counts, epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def _proportions(counts: np.ndarray, epsilon: float) -> np.ndarray:
    counts = np.asarray(counts, dtype="float64")
    total = counts.sum()
    share = counts / total if total > 0 else np.zeros_like(counts)
    return np.where(share > 0, share, epsilon)


def distinct_counts(values_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The distinct values of a sorted array and how many values are <= each (O(n), no search);
    None for the counts when every value is distinct (they are then 1..n)."""
    if len(values_sorted) < 2:
        return values_sorted, None
    last = np.empty(len(values_sorted), dtype=bool)  # the last copy of each value
    np.not_equal(values_sorted[1:], values_sorted[:-1], out=last[:-1])
    last[-1] = True
    if last.all():
        return values_sorted, None
    return values_sorted[last], np.flatnonzero(last) + 1


def _at_most(counts: np.ndarray | None, index: np.ndarray) -> np.ndarray:
    """Values <= the index-th distinct value (index >= 0)."""
    return index + 1 if counts is None else counts[index]


CHUNK = 1 << 18  # values per pass: temporaries stay in cache instead of growing with the data


def ks_statistic(reference_sorted: np.ndarray, current_sorted: np.ndarray) -> float:
    """D from two sorted samples, over the current sample's distinct values.

    Between two consecutive current values F_cur is flat and F_ref only rises, so the largest gap on
    that stretch is at its left end (F_cur - F_ref, with F_ref counting reference values <= it) or just
    before its right end (F_ref - F_cur, counting reference values < the next current value). Working on
    distinct values makes heavily tied columns (integers, rounded values) cheap. Counts stay integers
    until the end: the gaps are compared as n*m multiples. Long inputs go through in chunks."""
    ref_values, ref_counts = distinct_counts(reference_sorted)
    cur_values, cur_counts = distinct_counts(current_sorted)
    n, m = len(reference_sorted), len(current_sorted)
    last = len(ref_values) - 1
    best = 0
    for start in range(0, len(cur_values), CHUNK):
        values = cur_values[start:start + CHUNK + 1]  # one more: the next value bounds this chunk's stretches
        k = np.searchsorted(ref_values, values, side="left")  # distinct reference values < each current one
        ref_below = _at_most(ref_counts, k - 1)
        ref_below[k == 0] = 0  # reference values < v
        tied = ref_values[np.minimum(k, last)] == values
        tied &= k <= last
        ref_upto = ref_below.copy()
        if tied.any():
            ref_upto[tied] = _at_most(ref_counts, k[tied])  # reference values <= v
        stop = min(start + CHUNK, len(cur_values))
        cur_upto = (np.arange(start + 1, stop + 1) if cur_counts is None else cur_counts[start:stop])
        own = stop - start
        best = max(best, int(np.max(cur_upto * n - ref_upto[:own] * m)))
        after = np.append(ref_below[1:], n) if stop == len(cur_values) else ref_below[1:]
        best = max(best, int(np.max(after[:own] * m - cur_upto * n)))
        if start == 0:
            best = max(best, int(ref_below[0]) * m)  # below the smallest current value
    return best / (n * m)


def ks_pvalue(d: float, n_ref: int, n_cur: int) -> float:
    """Two-sided p-value of D for sample sizes n_ref and n_cur."""
    if max(n_ref, n_cur) <= EXACT_KS_MAX_N:
        return _ks_exact_pvalue(d, n_ref, n_cur)
    return ks_pvalue_asymptotic(d, n_ref, n_cur)


def ks_pvalue_limiting(d: float, n_ref: int, n_cur: int) -> float:
    """The limiting Kolmogorov distribution at sqrt(n_eff) * D: what a statistic that is itself
    approximate (against a profile) gets, at a fraction of the finite-n computation's cost."""
    effective = n_ref * n_cur / (n_ref + n_cur)
    return kolmogorov.limiting_sf(math.sqrt(effective) * d)


DKW_FLOOR = 8.0  # n * D^2 from which the p-value is below 2 exp(-16) = 2.3e-7 (Dvoretzky-Kiefer-Wolfowitz)


def ks_pvalue_asymptotic(d: float, n_ref: int, n_cur: int) -> float:
    """From the Kolmogorov distribution with the effective size n_ref * n_cur / (n_ref + n_cur).

    Where n * D^2 >= DKW_FLOOR the p-value is reported as its DKW bound 2 exp(-2 n D^2) (< 2.3e-7, and
    above the exact value): that changes no decision, and the expansion used for large n, one minus a
    CDF next to 1, has no digits left that far in the tail."""
    m, n = float(max(n_ref, n_cur)), float(min(n_ref, n_cur))
    effective = float(np.round(m * n / (m + n)))
    if effective * d * d >= DKW_FLOOR:
        return float(min(1.0, 2.0 * np.exp(-2.0 * effective * d * d)))
    return kolmogorov.finite_sf(int(effective), d)


def _ks_exact_pvalue(d: float, m: int, n: int) -> float:
    """P(D >= d) under the null: 1 - the share of monotone lattice paths from (0, 0) to (m, n) that stay
    strictly inside |i/m - j/n| < d. Walks the anti-diagonals with the share of paths (not their count),
    u(i, j) = i/s * u(i-1, j) + j/s * u(i, j-1) for s = i + j, so nothing overflows."""
    g = math.gcd(m, n)
    lcm = (m // g) * n
    h = int(round(d * lcm))  # D is a multiple of 1/lcm; rounding undoes float noise
    if h == 0:
        return 1.0
    bound = h * g  # |i/m - j/n| < d  <=>  |i*n - j*m| < h*g, in integers
    u = np.zeros(m + 1)
    u[0] = 1.0
    for s in range(1, m + n + 1):
        lo, hi = max(0, s - n), min(m, s)
        # Inside the band on this diagonal: |i*(m+n) - s*m| < bound.
        band_lo = max(lo, (s * m - bound) // (m + n) + 1)
        band_hi = min(hi, -((-(s * m + bound)) // (m + n)) - 1)
        new = np.zeros(m + 1)
        if band_lo <= band_hi:
            i = np.arange(band_lo, band_hi + 1)
            from_left = np.where(i >= 1, u[np.maximum(i - 1, 0)], 0.0) * (i / s)
            from_below = np.where(s - i >= 1, u[i], 0.0) * ((s - i) / s)
            new[band_lo:band_hi + 1] = from_left + from_below
        u = new
        if not u.any():
            return 1.0
    return float(np.clip(1.0 - u[m], 0.0, 1.0))


def wasserstein(reference_sorted: np.ndarray, current_sorted: np.ndarray) -> float:
    """W1 = integral over u in (0, 1) of |Q_ref(u) - Q_cur(u)|, exact for empirical distributions.

    The quantile functions are steps at i/n and j/m; in units of 1/(n*m) those breakpoints are the
    integers i*m and j*n, so each chunk of reference steps merges with the current steps it overlaps
    by a linear merge of two sorted runs."""
    a, b = reference_sorted, current_sorted
    n, m = len(a), len(b)
    if n == m:
        return float(sum(np.abs(a[s:s + CHUNK] - b[s:s + CHUNK]).sum() for s in range(0, n, CHUNK)) / n)
    total = 0.0
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        lo, hi = start * m, stop * m  # this chunk's span of u, in units of 1/(n*m)
        ends_a = np.arange(start + 1, stop + 1, dtype=np.int64) * m
        first_b, last_b = lo // n + 1, -(-hi // n)  # current steps ending inside (lo, hi], and the one past it
        ends_b = np.minimum(np.arange(first_b, last_b + 1, dtype=np.int64) * n, hi)
        ends = np.sort(np.concatenate([ends_a, ends_b]), kind="stable")
        widths = np.diff(ends, prepend=lo)
        index_a = (ends + m - 1) // m - 1  # the step of Q_ref on (previous end, this end]
        index_b = np.minimum((ends + n - 1) // n - 1, m - 1)
        total += float(np.sum(widths * np.abs(a[index_a] - b[index_b])))
    return total / (n * m)


def normalised_wasserstein(reference_sorted: np.ndarray, current_sorted: np.ndarray) -> float:
    scale = float(np.std(reference_sorted))
    return wasserstein(reference_sorted, current_sorted) / (scale if scale > 0 else 1.0)


# -- categorical ------------------------------------------------------------------------------------------
def aligned_frequencies(reference: Mapping[str, float],
                        current: Mapping[str, float]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Category counts of both sides over the union of their categories (reference order first)."""
    categories = list(reference) + [c for c in current if c not in reference]
    return (categories, np.array([reference.get(c, 0) for c in categories], dtype="float64"),
            np.array([current.get(c, 0) for c in categories], dtype="float64"))


def js_distance(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen-Shannon distance, base 2, between two count vectors over the same categories."""
    p = reference_counts / reference_counts.sum()
    q = current_counts / current_counts.sum()
    mix = (p + q) / 2
    divergence = (_kl2(p, mix) + _kl2(q, mix)) / 2
    return float(math.sqrt(max(divergence, 0.0)))


def _kl2(p: np.ndarray, q: np.ndarray) -> float:
    nonzero = p > 0
    return float(np.sum(p[nonzero] * np.log2(p[nonzero] / q[nonzero])))
