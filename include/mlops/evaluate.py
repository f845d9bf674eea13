"""Challenger vs champion on the same holdout, and the policy's decision.

Both models are loaded from the registry (what would serve, not what the trainer had in memory) and
scored on the holdout of the challenger's window, in the trainer's process: that is where the model's own
libraries are. The decision is then a pure function of that evidence, taken in the Airflow task. The
primary metric gets a paired bootstrap: the same resampled rows for both models, so the interval is about
the difference, not two noisy scores.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops import data, explain, tracking
from mlops.metrics import METRICS, compute_all
from mlops.policy import Candidate, Comparison, Decision, decide, holdout_warnings
from mlops.settings import Settings
from mlops.spec import ModelSpec

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

log = logging.getLogger("mlops.evaluate")


def paired_bootstrap(metric: str, maximize: bool, y: ArrayLike, challenger_scores: ArrayLike,
                     champion_scores: ArrayLike, samples: int, confidence: float, seed: int) -> Comparison:
    fn = METRICS[metric].compute
    sign = 1.0 if maximize else -1.0
    y = np.asarray(y)
    a, b = np.asarray(challenger_scores), np.asarray(champion_scores)
    rng = np.random.default_rng(seed)
    diffs = np.empty(samples)
    for i in range(samples):
        idx = rng.integers(0, len(y), len(y))
        diffs[i] = sign * (fn(y[idx], a[idx]) - fn(y[idx], b[idx]))
    alpha = (1 - confidence) / 2
    # A resample where the metric is undefined (one class only) makes the interval undefined: no
    # silent dropping, the policy then keeps the champion.
    lo, hi = (np.quantile(diffs, [alpha, 1 - alpha]) if not np.isnan(diffs).any() else (float("nan"), float("nan")))
    ca, cb = fn(y, a), fn(y, b)
    return Comparison(metric, ca, cb, sign * (ca - cb), float(lo), float(hi), confidence)


def gather_evidence(settings: Settings, spec: ModelSpec, train_result: dict[str, Any],
                    loaded: data.WindowData) -> dict[str, Any]:
    """Score challenger and current champion, both loaded from the registry, on the holdout of the window
    the challenger was trained on. Runs in the trainer's process (local or pod), where the model's own
    libraries are installed; the result is small JSON for the decision step."""
    from mlops.packaging import load_scorer

    name, ev, ds = spec.name, spec.evaluation, spec.dataset
    split = data.split_holdout(spec, loaded)
    y = split.holdout[ds.target].to_numpy()
    features = split.holdout[list(ds.features)]

    challenger_version = str(train_result["model_version"])
    challenger_model = load_scorer(f"models:/{name}/{challenger_version}")
    challenger_scores = challenger_model.predict(None, features)
    evidence: dict[str, Any] = {
        "model": name,
        "challenger_version": challenger_version,
        "challenger_metrics": compute_all(ds.task, y, challenger_scores),
        "challenger_interval_end": train_result["data_interval_end"],
        "champion_version": None,
        "champion_metrics": {},
        "champion_interval_end": None,
        "comparison": None,
        "holdout_fingerprint": data.fingerprint(split.holdout),
        "holdout_rows": int(len(y)),
        "holdout_smallest_class": _smallest_class(y) if ds.task == "binary_classification" else None,
        "holdout_days": split.holdout_days,
    }
    explaining = ev.explanation.enabled
    challenger_importance = (explain.importance(spec, lambda f: challenger_model.predict(None, f), features, y)
                             if explaining else None)
    champion_importance = None
    champion_mv = tracking.version_by_alias(settings, name, spec.promotion.alias)
    if champion_mv is not None:
        evidence["champion_version"] = str(champion_mv.version)
        evidence["champion_interval_end"] = champion_mv.tags.get(tracking.INTERVAL_END, "")
    if champion_mv is not None and evidence["champion_version"] == challenger_version:
        evidence["champion_metrics"] = evidence["challenger_metrics"]
        champion_importance = challenger_importance
    elif champion_mv is not None:
        champion_model = load_scorer(f"models:/{name}/{champion_mv.version}")
        champion_scores = champion_model.predict(None, features)
        evidence["champion_metrics"] = compute_all(ds.task, y, champion_scores)
        evidence["comparison"] = paired_bootstrap(ev.primary_metric, ev.maximize, y, challenger_scores,
                                                  champion_scores, ev.bootstrap_samples, ev.confidence,
                                                  spec.trainer.seed).__dict__
        if explaining:
            champion_importance = explain.importance(spec, lambda f: champion_model.predict(None, f), features, y)
    if challenger_importance is not None:
        evidence["explanation"] = explain.evidence(spec, challenger_importance, champion_importance, len(y))
        log_explanation(settings, spec, train_result, challenger_version, evidence["explanation"])
    return evidence


def log_explanation(settings: Settings, spec: ModelSpec, train_result: dict[str, Any], version: str,
                    explanation: dict[str, Any]) -> None:
    """On the run that trained the version (a cache hit: its own small run): the importances as JSON and a
    chart; on the version, the top features as a tag the fleet page reads without downloading artifacts."""
    import json

    client = tracking.client(settings)
    run_id = train_result.get("cache_run_id") or train_result["run_id"]
    client.log_dict(run_id, explanation, "explanation/importance.json")
    client.log_text(run_id, explain.svg(explanation["challenger"], explanation["champion"]),
                    "explanation/importance.svg")
    client.set_model_version_tag(spec.name, version, tracking.EXPLANATION,
                                 json.dumps(explain.top(explanation["challenger"])))


def decide_from_evidence(spec: ModelSpec, evidence: dict[str, Any], *, force: bool = False,
                         force_reason: str | None = None) -> Decision:
    """The policy over the trainer's evidence: pure, so a retry or a forced re-decision needs no scoring."""
    challenger = Candidate(evidence["challenger_version"], evidence["challenger_metrics"],
                           evidence["challenger_interval_end"])
    champion = None
    if evidence["champion_version"] is not None:
        champion = Candidate(evidence["champion_version"], evidence["champion_metrics"],
                             evidence["champion_interval_end"] or "")
    comparison = Comparison(**evidence["comparison"]) if evidence["comparison"] else None
    decision = decide(spec.evaluation, challenger, champion, comparison, force=force, force_reason=force_reason,
                      allow_force=spec.promotion.allow_force)
    # Evidence from before the smallest-class count existed still gets the row-count warning.
    warnings = holdout_warnings(int(evidence.get("holdout_rows") or 0), evidence.get("holdout_smallest_class"))
    ex = spec.evaluation.explanation
    jumped = explain.jumps(evidence.get("explanation"), ex.max_shift)
    if jumped and ex.block_on_shift and decision.promote:
        # a gate the spec asked for, like a guardrail: it applies to forced promotions too
        return Decision(False, "reject", [*jumped, "evaluation.explanation.block_on_shift is set"],
                        decision.forced, warnings)
    warnings = [*warnings, *jumped]
    return dataclasses.replace(decision, warnings=warnings) if warnings else decision


def _smallest_class(y: np.ndarray) -> int:
    return int(min(np.sum(y == 0), np.sum(y == 1)))


def record_decision(settings: Settings, spec: ModelSpec, evidence: dict[str, Any], decision: Decision,
                    run_tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Log evidence and decision as an MLflow run; return the summary the promote step reads."""
    import mlflow

    summary: dict[str, Any] = {**evidence, "decision": decision.to_dict()}
    tags = {**(run_tags or {}), tracking.MODEL: spec.name, tracking.KIND: "evaluate",
            "mlops.challenger_version": evidence["challenger_version"],
            "mlops.champion_version": evidence["champion_version"] or "",
            "mlops.holdout_fingerprint": evidence["holdout_fingerprint"], "mlops.decision": decision.outcome}
    exp_id = tracking.experiment_id(settings, spec.name)
    with mlflow.start_run(experiment_id=exp_id, run_name=f"evaluate v{evidence['challenger_version']}",
                          tags=tags) as run:
        mlflow.log_metrics({f"challenger.{k}": v for k, v in evidence["challenger_metrics"].items() if v == v})
        mlflow.log_metrics({f"champion.{k}": v for k, v in evidence["champion_metrics"].items() if v == v})
        mlflow.log_dict(summary, "evaluation.json")
        if evidence.get("explanation"):
            ex = evidence["explanation"]
            mlflow.log_text(explain.svg(ex["challenger"], ex["champion"]), "explanation.svg")
    summary["evaluation_run_id"] = run.info.run_id
    log.info("%s: %s (%s)", spec.name, decision.outcome, "; ".join(decision.reasons))
    return summary
