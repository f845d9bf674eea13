import pytest

from mlops.policy import Candidate, Comparison, PolicyError, decide
from mlops.spec import Evaluation, Guardrail

CFG = Evaluation(primary_metric="roc_auc", min_improvement=0.01,
                 guardrails=[Guardrail(metric="accuracy", min=0.6), Guardrail(metric="log_loss", max_degradation=0.02)])


def cand(version, auc=0.8, acc=0.7, ll=0.5, end="2026-01-15T00:00:00+00:00"):
    return Candidate(version, {"roc_auc": auc, "accuracy": acc, "log_loss": ll}, end)


def comp(improvement, lo, hi):
    return Comparison("roc_auc", 0.8 + improvement, 0.8, improvement, lo, hi, 0.95)


def test_first_model_passing_guardrails_becomes_champion():
    d = decide(CFG, cand("1"), None, None)
    assert d.promote and d.outcome == "promote"


def test_first_model_failing_a_guardrail_is_rejected():
    d = decide(CFG, cand("1", acc=0.5), None, None)
    assert not d.promote and d.outcome == "reject"
    assert "accuracy" in d.reasons[0] and "below the minimum 0.6" in d.reasons[0]


def test_clear_improvement_with_confidence_promotes():
    d = decide(CFG, cand("2"), cand("1"), comp(0.03, 0.01, 0.05))
    assert d.promote, d.reasons


def test_improvement_below_minimum_keeps_champion():
    d = decide(CFG, cand("2"), cand("1"), comp(0.005, 0.001, 0.009))
    assert not d.promote and d.outcome == "keep" and "minimum improvement" in d.reasons[0]


def test_interval_including_zero_keeps_champion():
    d = decide(CFG, cand("2"), cand("1"), comp(0.02, -0.001, 0.04))
    assert not d.promote and "not confident" in d.reasons[0]


def test_degradation_guardrail_against_champion():
    d = decide(CFG, cand("2", ll=0.6), cand("1", ll=0.5), comp(0.03, 0.01, 0.05))
    assert d.outcome == "reject" and "log_loss" in d.reasons[0]


def test_champion_on_newer_data_is_kept_unless_forced():
    older = cand("2", end="2026-01-10T00:00:00+00:00")
    newer = cand("1", end="2026-01-15T00:00:00+00:00")
    d = decide(CFG, older, newer, comp(0.05, 0.03, 0.07))
    assert not d.promote and "newer data" in d.reasons[0]
    forced = decide(CFG, older, newer, comp(0.05, 0.03, 0.07), force=True, force_reason="backfill fix")
    assert forced.promote and forced.forced and "backfill fix" in forced.reasons[0]


def test_force_needs_a_reason_and_permission():
    with pytest.raises(PolicyError, match="needs a reason"):
        decide(CFG, cand("2"), cand("1"), comp(0, 0, 0), force=True, force_reason="  ")
    with pytest.raises(PolicyError, match="allow_force"):
        decide(CFG, cand("2"), cand("1"), comp(0, 0, 0), force=True, force_reason="x", allow_force=False)


def test_force_does_not_bypass_guardrails():
    d = decide(CFG, cand("2", acc=0.1), cand("1"), comp(0.05, 0.03, 0.07), force=True, force_reason="x")
    assert not d.promote and d.outcome == "reject"


def test_already_champion_is_a_no_op():
    d = decide(CFG, cand("3"), cand("3"), None)
    assert not d.promote and d.outcome == "already_champion"


def test_guardrail_degradation_follows_each_metric_direction():
    cfg = Evaluation(primary_metric="rmse", guardrails=[Guardrail(metric="r2", max_degradation=0.05),
                                                        Guardrail(metric="mae", max_degradation=0.1)])
    champion = Candidate("1", {"rmse": 4.5, "r2": 0.90, "mae": 3.0}, "a")
    better = Candidate("2", {"rmse": 4.0, "r2": 0.95, "mae": 2.5}, "b")
    worse_r2 = Candidate("2", {"rmse": 4.0, "r2": 0.80, "mae": 2.5}, "b")
    worse_mae = Candidate("2", {"rmse": 4.0, "r2": 0.95, "mae": 3.5}, "b")
    c = Comparison("rmse", 4.0, 4.5, 0.5, 0.2, 0.8, 0.95)
    assert decide(cfg, better, champion, c).promote
    assert "guardrail r2" in decide(cfg, worse_r2, champion, c).reasons[0]
    assert "guardrail mae" in decide(cfg, worse_mae, champion, c).reasons[0]


def test_undefined_metric_never_promotes():
    nan = float("nan")
    assert decide(CFG, cand("1", auc=nan), None, None).outcome == "reject"
    d = decide(CFG, cand("2"), cand("1"), Comparison("roc_auc", 0.8, 0.7, 0.1, nan, nan, 0.95))
    assert not d.promote and "cannot be compared" in d.reasons[0]


def test_champion_without_data_history_is_not_replaced_silently():
    d = decide(CFG, cand("2"), cand("1", end=""), comp(0.05, 0.03, 0.07))
    assert not d.promote and "does not record the data" in d.reasons[0]
