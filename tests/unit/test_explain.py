"""Permutation importance as evidence: it finds the feature a model leans on, compares two models on the same
rows, names a jump in the decision (a warning, or a gate when the spec says so) and draws the chart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from helpers import ROOT
from mlops import explain
from mlops.evaluate import decide_from_evidence
from mlops.spec import parse_spec


def churn_spec(**explanation):
    data = yaml.safe_load((ROOT / "include" / "models" / "churn.yaml").read_text())
    data["evaluation"]["explanation"] = explanation
    return parse_spec(data)


def problem(rows: int = 1500, seed: int = 3):
    """The label follows `signal` alone; `noise` and `also_noise` carry nothing."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"signal": rng.normal(size=rows), "noise": rng.normal(size=rows),
                          "also_noise": rng.normal(size=rows)})
    y = (frame["signal"] + 0.3 * rng.normal(size=rows) > 0).astype(int).to_numpy()
    return frame, y


def fitted(frame, y, columns):
    model = LogisticRegression().fit(frame[columns], y)
    return lambda f: model.predict_proba(f[columns])[:, 1]


def test_the_feature_the_model_leans_on_gets_the_importance():
    spec = churn_spec(repeats=4, max_rows=1000)
    frame, y = problem()
    values = explain.importance(spec, fitted(frame, y, ["signal", "noise", "also_noise"]), frame, y)
    assert set(values) == {"signal", "noise", "also_noise"}
    assert values["signal"] > 0.2  # shuffling it costs a good part of the AUC
    assert abs(values["noise"]) < 0.02 and abs(values["also_noise"]) < 0.02
    assert explain.shares(values)["signal"] > 0.9
    # seeded: the same rows and shuffles give the same numbers
    assert explain.importance(spec, fitted(frame, y, ["signal", "noise", "also_noise"]), frame, y) == values


def test_a_jump_between_champion_and_challenger_is_named_and_can_be_a_gate():
    frame, y = problem()
    spec = churn_spec(repeats=3)
    leans_on_signal = explain.importance(spec, fitted(frame, y, ["signal", "noise"]), frame, y)
    leans_on_noise = explain.importance(spec, fitted(frame, y, ["noise", "also_noise"]), frame, y)
    ex = explain.evidence(spec, leans_on_noise, leans_on_signal, len(y))
    assert ex["shifts"][0]["feature"] == "signal" and ex["shifts"][0]["shift"] < -0.5
    [reason, *_] = explain.jumps(ex, 0.25)
    assert reason.startswith("feature 'signal' lost importance") and "under the challenger" in reason

    evidence = {"challenger_version": "2", "challenger_interval_end": "2026-01-15",
                "challenger_metrics": {"roc_auc": 0.9, "log_loss": 0.3, "accuracy": 0.85},
                "champion_version": "1", "champion_interval_end": "2026-01-14",
                "champion_metrics": {"roc_auc": 0.8, "log_loss": 0.4, "accuracy": 0.8},
                "comparison": {"metric": "roc_auc", "challenger": 0.9, "champion": 0.8, "improvement": 0.1,
                               "ci_low": 0.05, "ci_high": 0.15, "confidence": 0.95},
                "holdout_rows": 1500, "holdout_smallest_class": 700, "explanation": ex}
    warned = decide_from_evidence(spec, evidence)
    assert warned.promote and any("'signal' lost importance" in w for w in warned.warnings)
    gated = decide_from_evidence(churn_spec(block_on_shift=True), evidence, force=True, force_reason="now")
    assert not gated.promote and gated.outcome == "reject"
    assert any("'signal' lost importance" in r for r in gated.reasons)
    calm = decide_from_evidence(spec, {**evidence, "explanation": explain.evidence(spec, leans_on_signal,
                                                                                   leans_on_signal, len(y))})
    assert calm.promote and not any("importance" in w for w in calm.warnings)


def test_the_chart_and_the_table_show_the_shares():
    challenger, champion = {"tenure": 0.3, "contract": 0.1, "noise": -0.01}, {"tenure": 0.1, "contract": 0.3}
    picture = explain.svg(challenger, champion)
    assert picture.startswith("<svg") and picture.count("<rect") == 6 and ">75%</text>" in picture
    ex = {"champion": champion, "shifts": explain.compare(challenger, champion)}
    table = explain.markdown(ex)
    assert table[0] == "| feature | challenger | champion | shift |"
    assert "| tenure | ███████████████ 75% | 25% | +50% |" in table


@pytest.mark.parametrize("rows", [120, 5000])
def test_it_measures_at_most_max_rows(rows):
    spec = churn_spec(repeats=1, max_rows=100)
    frame, y = problem(rows)
    seen = []

    def predict(f):
        seen.append(len(f))
        return f["signal"].to_numpy()

    explain.importance(spec, predict, frame, y)
    assert set(seen) == {100}
