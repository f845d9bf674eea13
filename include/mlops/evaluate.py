"""Challenger vs champion on the same holdout, and the policy's decision.

Both models are loaded from the registry (what would serve, not what the trainer had in memory) and
scored on the holdout of the challenger's window. The primary metric gets a paired bootstrap: the same
resampled rows for both models, so the interval is about the difference, not two noisy scores.
"""

from __future__ import annotations

import logging
from datetime import date

import numpy as np

from mlops import data, tracking
from mlops.metrics import METRICS, compute_all
from mlops.policy import Candidate, Comparison, decide
from mlops.settings import Settings
from mlops.spec import ModelSpec

log = logging.getLogger("mlops.evaluate")


def paired_bootstrap(metric: str, maximize: bool, y, challenger_scores, champion_scores, samples: int,
                     confidence: float, seed: int) -> Comparison:
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


def evaluate(settings: Settings, spec: ModelSpec, train_result: dict, *, force: bool = False,
             force_reason: str | None = None, run_tags: dict | None = None) -> dict:
    """Score, compare, decide; log the evidence to an MLflow run. Returns a small JSON-able summary."""
    import mlflow

    from mlops.packaging import load_scorer

    name, ev, ds = spec.name, spec.evaluation, spec.dataset
    window = data.WindowRange(date.fromisoformat(train_result["window_first_day"]),
                              date.fromisoformat(train_result["window_last_day"]), "train_result")
    loaded = data.load_window(spec, settings.data_root, window)
    fingerprint = data.fingerprint(loaded.frame[ds.columns])
    if fingerprint != train_result["fingerprint"]:
        from mlops.train import DataChangedError

        raise DataChangedError(
            f"{name}: the data of window {window.first_day}..{window.last_day} changed after training "
            f"(fingerprint {train_result['fingerprint']} trained, {fingerprint} now); re-run the DAG run"
        )
    split = data.split_holdout(spec, loaded)
    holdout_fp = data.fingerprint(split.holdout)
    y = split.holdout[ds.target].to_numpy()
    features = split.holdout[list(ds.features)]

    challenger_version = str(train_result["model_version"])
    challenger_scores = load_scorer(f"models:/{name}/{challenger_version}").predict(None, features)
    challenger_metrics = compute_all(ds.task, y, challenger_scores)
    challenger = Candidate(challenger_version, challenger_metrics, train_result["data_interval_end"])

    champion_mv = tracking.version_by_alias(settings, name, spec.promotion.alias)
    champion = comparison = None
    champion_metrics = {}
    if champion_mv is not None and str(champion_mv.version) != challenger_version:
        champion_scores = load_scorer(f"models:/{name}/{champion_mv.version}").predict(None, features)
        champion_metrics = compute_all(ds.task, y, champion_scores)
        champion = Candidate(str(champion_mv.version), champion_metrics,
                             champion_mv.tags.get(tracking.INTERVAL_END, ""))
        comparison = paired_bootstrap(ev.primary_metric, ev.maximize, y, challenger_scores, champion_scores,
                                      ev.bootstrap_samples, ev.confidence, spec.trainer.seed)
    elif champion_mv is not None:
        champion = challenger  # the challenger already is the champion

    decision = decide(ev, challenger, champion, comparison, force=force, force_reason=force_reason,
                      allow_force=spec.promotion.allow_force)
    summary = {
        "model": name,
        "challenger_version": challenger_version,
        "champion_version": champion.version if champion else None,
        "holdout_fingerprint": holdout_fp,
        "holdout_rows": int(len(y)),
        "holdout_days": split.holdout_days,
        "challenger_metrics": challenger_metrics,
        "champion_metrics": champion_metrics,
        "comparison": comparison.__dict__ if comparison else None,
        "decision": decision.to_dict(),
    }
    exp_id = tracking.experiment_id(settings, name)
    tags = {**(run_tags or {}), tracking.MODEL: name, tracking.KIND: "evaluate",
            "mlops.challenger_version": challenger_version,
            "mlops.champion_version": summary["champion_version"] or "",
            "mlops.holdout_fingerprint": holdout_fp, "mlops.decision": decision.outcome}
    with mlflow.start_run(experiment_id=exp_id, run_name=f"evaluate v{challenger_version}", tags=tags) as run:
        mlflow.log_metrics({f"challenger.{k}": v for k, v in challenger_metrics.items() if v == v})
        mlflow.log_metrics({f"champion.{k}": v for k, v in champion_metrics.items() if v == v})
        mlflow.log_dict(summary, "evaluation.json")
    summary["evaluation_run_id"] = run.info.run_id
    log.info("%s: %s (%s)", name, decision.outcome, "; ".join(decision.reasons))
    return summary
