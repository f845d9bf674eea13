"""The Kolmogorov distribution in numpy, for the KS p-values: what scipy.stats.kstwo.sf and
scipy.special.kolmogorov compute, without importing scipy.stats (most of a second of a CLI run's start).

* `finite_sf(n, x)`: P(D_n >= x) for the one-sample two-sided statistic D_n of n values. The two-sample
  test evaluates it at the effective size round(n_ref * n_cur / (n_ref + n_cur)), as ks_2samp does. The
  method follows Simard & L'Ecuyer (2011), as scipy's does: closed forms at the ends (Ruben & Gambino),
  Durbin's matrix where it is small, twice the one-sided tail (Birnbaum & Tingey's exact sum) in the tail,
  and the Pelz-Good expansion in 1/sqrt(n) for the rest of large n. One departure: beyond SMIRNOV_MAX_N
  values the tail comes from Pelz-Good too (summing n terms in numpy costs tenths of a second; scipy sums
  them in C); there the two differ by under 5e-8, 2e-6 of the p-value. The tests hold it to scipy.
* `limiting_sf(z)`: P(K > z) for the limiting distribution K of sqrt(n) * D_n.
"""

from __future__ import annotations

import math

import numpy as np

SQRT_2PI = math.sqrt(2 * math.pi)
PI2 = math.pi ** 2
LOG_TINY = -708.0  # exp() of anything lower is 0 in float64
DURBIN_MAX_N = 140  # up to here Durbin's matrix is exact, small and quick for every x that needs it
TAIL_NX2 = 2.2  # from n * x^2 = 2.2 on, twice the one-sided tail is the two-sided one to float precision
DURBIN_LARGE_N = 100_000  # above DURBIN_MAX_N, Durbin's matrix where n * x^1.5 <= 1.4 (still small there)
SMIRNOV_MAX_N = 10_000  # Birnbaum & Tingey's sum has n terms: beyond this, Pelz-Good in the tail as well


def limiting_sf(z: float) -> float:
    """P(K > z) = 2 sum_k (-1)^(k-1) exp(-2 k^2 z^2); below z = 1 from the CDF's theta-function form,
    sqrt(2 pi) / z * sum_k exp(-(2k-1)^2 pi^2 / (8 z^2)), which converges fast there."""
    if z <= 0:
        return 1.0
    k = np.arange(1, 21, dtype="float64")
    if z < 1.0:
        return float(min(1.0, max(0.0, 1.0 - SQRT_2PI / z * np.sum(np.exp(-(2 * k - 1) ** 2 * PI2 / (8 * z * z))))))
    return float(min(1.0, max(0.0, 2.0 * np.sum((-1.0) ** (k - 1) * np.exp(-2.0 * k * k * z * z)))))


def finite_sf(n: int, x: float) -> float:
    """P(D_n >= x) for n values (n >= 1)."""
    if x >= 1.0:
        return 0.0
    if x <= 0.0:
        return 1.0
    t = n * x
    if t <= 1.0:  # x <= 1/n: a closed form (Ruben & Gambino)
        return 1.0 if t <= 0.5 else 1.0 - math.exp(_log_factorial_over_power(n) + n * math.log(2 * t - 1))
    if t >= n - 1:
        return 2.0 * (1.0 - x) ** n
    nx2 = t * x
    tail = x >= 0.5 or (n <= DURBIN_MAX_N and nx2 > 4.0) or (n > DURBIN_MAX_N and nx2 >= TAIL_NX2)
    if tail and n <= SMIRNOV_MAX_N:
        return min(1.0, 2.0 * smirnov_sf(n, x))
    if not tail and (n <= DURBIN_MAX_N or (n <= DURBIN_LARGE_N and n * x ** 1.5 <= 1.4)):
        return _clip(1.0 - durbin_cdf(n, x))
    return _clip(1.0 - pelz_good_cdf(n, x))


def _clip(p: float) -> float:
    return min(1.0, max(0.0, p))


def _log_factorial_over_power(n: int) -> float:
    """log(n! / n^n)."""
    return math.lgamma(n + 1) - n * math.log(n)


def log_factorial(v: np.ndarray) -> np.ndarray:
    """log(v!) for integers v >= 0: a table below 20, Stirling's series (error < 1e-12) from there."""
    v = np.asarray(v, dtype="float64")
    table = np.array([math.lgamma(i + 1) for i in range(20)])
    small = v < 20
    w = np.where(small, 20.0, v) + 1.0  # log(v!) = lgamma(w)
    stirling = ((w - 0.5) * np.log(w) - w + 0.5 * math.log(2 * math.pi)
                + 1 / (12 * w) - 1 / (360 * w ** 3) + 1 / (1260 * w ** 5) - 1 / (1680 * w ** 7))
    return np.where(small, table[np.minimum(v, 19).astype(np.int64)], stirling)


def smirnov_sf(n: int, x: float) -> float:
    """P(D+_n >= x), the one-sided tail, by Birnbaum & Tingey's sum (all terms positive, taken in logs):
    x * sum_{j=0}^{floor(n(1-x))} C(n, j) (x + j/n)^(j-1) (1 - x - j/n)^(n-j)."""
    if x >= 1.0:
        return 0.0
    if x <= 0.0:
        return 1.0
    j = np.arange(0, int(math.floor(n * (1.0 - x))) + 1, dtype="float64")
    rest = 1.0 - x - j / n
    inside = rest > 0  # a last term with nothing left is 0
    j, rest = j[inside], rest[inside]
    log_terms = (log_factorial(np.array([n]))[0] - log_factorial(j) - log_factorial(n - j)
                 + (j - 1) * np.log(x + j / n) + (n - j) * np.log(rest))
    top = float(np.max(log_terms))
    return _clip(x * math.exp(top) * float(np.sum(np.exp(log_terms - top))))


def durbin_cdf(n: int, x: float) -> float:
    """P(D_n < x) by Durbin's matrix (Marsaglia, Tsang & Wang 2003): n!/n^n times the central element of
    H^n, H of size 2k-1 for k = floor(n x) + 1. Powers are rescaled as they go, so nothing overflows."""
    k = int(math.floor(n * x)) + 1
    h = k - n * x
    m = 2 * k - 1
    inv_factorial = np.exp(-log_factorial(np.arange(m + 1)))
    offset = np.arange(m)[:, None] - np.arange(m)[None, :] + 1  # H[i, j] = 1/(i-j+1)! below the diagonal + 1
    matrix = np.where(offset >= 0, inv_factorial[np.clip(offset, 0, m)], 0.0)
    h_powers = h ** np.arange(1, m + 1)
    matrix[:, 0] -= h_powers * inv_factorial[1:]
    matrix[m - 1, :] -= h_powers[::-1] * inv_factorial[1:][::-1]
    if 2 * h > 1:
        matrix[m - 1, 0] += (2 * h - 1) ** m * inv_factorial[m]
    power, log_scale = _matrix_power_scaled(matrix, n)
    if power is None:
        return 0.0
    return _clip(float(power[k - 1, k - 1]) * math.exp(_log_factorial_over_power(n) + log_scale))


def _matrix_power_scaled(matrix: np.ndarray, e: int) -> tuple[np.ndarray | None, float]:
    """matrix^e as (M, s) with matrix^e = M * exp(s); (None, 0) when it is zero."""
    result, result_log = None, 0.0
    base, base_log = matrix, 0.0
    while True:
        if e & 1:
            if result is None:
                result, result_log = base.copy(), base_log
            else:
                result, result_log = _rescaled(result @ base, result_log + base_log)
                if result is None:
                    return None, 0.0
        e >>= 1
        if not e:
            return result, result_log
        squared, base_log = _rescaled(base @ base, 2 * base_log)
        if squared is None:
            return None, 0.0
        base = squared


def _rescaled(matrix: np.ndarray, log_scale: float) -> tuple[np.ndarray | None, float]:
    top = float(np.max(np.abs(matrix)))
    if top == 0.0:
        return None, 0.0
    return matrix / top, log_scale + math.log(top)


def pelz_good_cdf(n: int, x: float) -> float:
    """P(D_n <= x) by the Pelz-Good expansion K0(z) + K1(z)/sqrt(n) + K2(z)/n + K3(z)/n^1.5 at
    z = x sqrt(n), in its theta-function form (sums over odd multiples of pi / (2z))."""
    z = math.sqrt(n) * x
    z2 = z * z
    odd_exponent = -PI2 / (8 * z2)
    if odd_exponent < LOG_TINY:
        return 0.0
    k = np.arange(1, math.ceil(16 * z / math.pi) + 1, dtype="float64")
    m2 = (2 * k - 1) ** 2
    k2 = k * k
    odd = np.exp(odd_exponent * m2)  # exp(-(2k-1)^2 pi^2 / (8 z^2))
    even = np.exp(-PI2 / (2 * z2) * k2)  # exp(-k^2 pi^2 / (2 z^2))
    z4, z6 = z2 * z2, z2 * z2 * z2
    k0 = np.sum(odd) / z
    k1 = np.sum((PI2 / 4 * m2 - z2) * odd) / (6 * z4)
    k2_ = (np.sum((6 * z6 + 2 * z4 + PI2 / 4 * (2 * z4 - 5 * z2) * m2 + PI2 ** 2 / 16 * (1 - 2 * z2) * m2 ** 2) * odd)
           / (72 * z6 * z) - PI2 * np.sum(k2 * even) / (36 * z2 * z))
    k3 = (np.sum((-30 * z6 - 90 * z4 * z4 + PI2 / 4 * (135 * z4 - 96 * z6) * m2
                  + PI2 ** 2 / 16 * (212 * z4 - 60 * z2) * m2 ** 2 + PI2 ** 3 / 64 * (5 - 30 * z2) * m2 ** 3) * odd)
          / (6480 * z4 * z6) + PI2 * np.sum((3 * z2 - PI2 * k2) * k2 * even) / (216 * z6))
    return float(SQRT_2PI * (k0 + k1 / math.sqrt(n) + k2_ / n + k3 / n ** 1.5))
