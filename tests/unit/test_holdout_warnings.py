"""A holdout too small for its metric to mean anything promotes with a warning in the decision."""

from helpers import load_example as spec_of
from mlops.evaluate import decide_from_evidence
from mlops.policy import holdout_warnings


def _evidence(rows, smallest):
    return {"challenger_version": "1", "challenger_metrics": {"roc_auc": 1.0, "accuracy": 1.0, "log_loss": 0.01,
                                                               "f1": 1.0, "brier": 0.0},
            "challenger_interval_end": "2026-01-15T00:00:00+00:00", "champion_version": None,
            "champion_metrics": {}, "champion_interval_end": None, "comparison": None,
            "holdout_rows": rows, "holdout_smallest_class": smallest}


def test_a_tiny_holdout_is_named_in_the_decision():
    decision = decide_from_evidence(spec_of("churn"), _evidence(80, 9))
    assert decision.promote  # a warning, not a veto
    text = " ".join(decision.warnings)
    assert "only 80 rows" in text and "rarer class has only 9 rows" in text
    assert "dataset.window.days" in text
    assert decision.to_dict()["warnings"] == decision.warnings  # reaches the evaluation run and the audit record


def test_a_big_enough_holdout_has_no_warning():
    assert decide_from_evidence(spec_of("churn"), _evidence(2000, 400)).warnings == []
    assert holdout_warnings(199, None) and not holdout_warnings(200, None)
    assert holdout_warnings(5000, 29) and not holdout_warnings(5000, 30)
