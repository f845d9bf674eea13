import numpy as np
import pytest
from sklearn import metrics as sk

from mlops.evaluate import paired_bootstrap
from mlops.metrics import METRICS

rng = np.random.default_rng(0)
Y_BIN = rng.integers(0, 2, 500)
S_BIN = np.clip(Y_BIN * 0.3 + rng.random(500) * 0.7, 0, 1).round(2)  # ties on purpose
Y_REG = rng.normal(10, 3, 500)
S_REG = Y_REG + rng.normal(0, 1, 500)


@pytest.mark.parametrize("name,reference", [
    ("roc_auc", lambda y, s: sk.roc_auc_score(y, s)),
    ("accuracy", lambda y, s: sk.accuracy_score(y, s >= 0.5)),
    ("log_loss", lambda y, s: sk.log_loss(y, s)),
    ("f1", lambda y, s: sk.f1_score(y, s >= 0.5)),
    ("brier", lambda y, s: sk.brier_score_loss(y, s)),
])
def test_binary_metrics_match_sklearn(name, reference):
    assert METRICS[name].compute(Y_BIN, S_BIN) == pytest.approx(reference(Y_BIN, S_BIN), rel=1e-9)


@pytest.mark.parametrize("name,reference", [
    ("rmse", lambda y, s: np.sqrt(sk.mean_squared_error(y, s))),
    ("mae", sk.mean_absolute_error),
    ("r2", sk.r2_score),
])
def test_regression_metrics_match_sklearn(name, reference):
    assert METRICS[name].compute(Y_REG, S_REG) == pytest.approx(reference(Y_REG, S_REG), rel=1e-9)


def test_bootstrap_direction_maximize_vs_minimize():
    worse = S_REG + rng.normal(0, 2, 500)
    # r2 is maximised, rmse minimised: the better model's improvement is positive under both.
    assert paired_bootstrap("r2", True, Y_REG, S_REG, worse, 100, 0.95, seed=2).improvement > 0
    assert paired_bootstrap("rmse", False, Y_REG, S_REG, worse, 100, 0.95, seed=2).improvement > 0
    assert paired_bootstrap("rmse", True, Y_REG, S_REG, worse, 100, 0.95, seed=2).improvement < 0


def test_bootstrap_interval_is_undefined_when_a_resample_is():
    y = np.array([0] * 99 + [1])
    c = paired_bootstrap("roc_auc", True, y, rng.random(100), rng.random(100), 200, 0.95, seed=3)
    assert np.isnan(c.ci_low)


def test_paired_bootstrap_sees_a_real_improvement_and_no_improvement():
    worse = S_REG + rng.normal(0, 2, 500)
    better = paired_bootstrap("rmse", False, Y_REG, S_REG, worse, 200, 0.95, seed=1)
    assert better.improvement > 0 and better.ci_low > 0
    same = paired_bootstrap("rmse", False, Y_REG, S_REG, S_REG, 200, 0.95, seed=1)
    assert same.improvement == 0 and same.ci_low == 0 and same.ci_high == 0
    # Deterministic for a seed: the same evidence gives the same decision on a re-run.
    assert paired_bootstrap("rmse", False, Y_REG, S_REG, worse, 200, 0.95, seed=1) == better
