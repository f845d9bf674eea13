"""The promotion policy: a pure function from evidence to a decision with its reasons.

No I/O and no MLflow here, so every rule is unit-tested on plain values and the same decision is
reproduced from the logged evidence.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from mlops.spec import Evaluation, Guardrail


class PolicyError(ValueError):
    """A promotion request the spec does not allow (e.g. force without a reason)."""


@dataclass(frozen=True)
class Candidate:
    version: str
    metrics: dict[str, float]
    data_interval_end: str  # ISO time; ISO strings of one zone sort like times


@dataclass(frozen=True)
class Comparison:
    """Primary metric of challenger vs champion on the same holdout, with a paired-bootstrap interval
    of the improvement (positive = challenger better, whatever the metric's direction)."""

    metric: str
    challenger: float
    champion: float
    improvement: float
    ci_low: float
    ci_high: float
    confidence: float


@dataclass(frozen=True)
class Decision:
    promote: bool
    outcome: str  # promote | keep | reject | already_champion
    reasons: list[str] = field(default_factory=list)
    forced: bool = False
    warnings: list[str] = field(default_factory=list)  # the decision stands, but read it with these in mind

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _guardrail_failures(guardrails: list[Guardrail], challenger: Candidate, champion: Candidate | None,
                        maximize_of: Callable[[str], bool]) -> list[str]:
    failures = []
    for g in guardrails:
        value = challenger.metrics.get(g.metric)
        if value is None or value != value:
            failures.append(f"guardrail {g.metric}: no value for the challenger")
            continue
        if g.min is not None and value < g.min:
            failures.append(f"guardrail {g.metric}: {value:.4f} is below the minimum {g.min}")
        if g.max is not None and value > g.max:
            failures.append(f"guardrail {g.metric}: {value:.4f} is above the maximum {g.max}")
        if g.max_degradation is not None and champion is not None and g.metric in champion.metrics:
            reference = champion.metrics[g.metric]
            worse_by = (reference - value) if maximize_of(g.metric) else (value - reference)
            if worse_by > g.max_degradation:
                failures.append(
                    f"guardrail {g.metric}: {worse_by:.4f} worse than champion v{champion.version} "
                    f"(allowed {g.max_degradation})"
                )
    return failures


# Below these a bootstrap interval of the holdout metric says little: a handful of rows decides it.
MIN_HOLDOUT_ROWS = 200
MIN_HOLDOUT_CLASS_ROWS = 30


def holdout_warnings(rows: int, smallest_class: int | None) -> list[str]:
    """Why the holdout may be too small to trust a metric or its interval (empty when it is big enough).
    `smallest_class`: rows of the rarer label in a classification holdout, None for regression."""
    out = []
    if rows < MIN_HOLDOUT_ROWS:
        out.append(f"the holdout has only {rows} rows (aim for at least {MIN_HOLDOUT_ROWS}): metrics and the "
                   "bootstrap interval on so few rows are mostly noise; widen dataset.window.days or "
                   "evaluation.holdout.fraction")
    if smallest_class is not None and smallest_class < MIN_HOLDOUT_CLASS_ROWS:
        out.append(f"the rarer class has only {smallest_class} rows in the holdout (aim for at least "
                   f"{MIN_HOLDOUT_CLASS_ROWS}): ranking metrics such as roc_auc can reach 1.000 by chance; widen "
                   "the window or the holdout")
    return out


def decide(
    cfg: Evaluation,
    challenger: Candidate,
    champion: Candidate | None,
    comparison: Comparison | None,
    *,
    force: bool = False,
    force_reason: str | None = None,
    allow_force: bool = True,
) -> Decision:
    from mlops.metrics import METRICS

    if force:
        _check_force(force_reason, allow_force)

    if champion is not None and champion.version == challenger.version:
        return Decision(False, "already_champion", [f"v{challenger.version} is already the champion"])

    def maximize_of(metric: str) -> bool:
        return cfg.maximize if metric == cfg.primary_metric else METRICS[metric].higher_is_better

    failures = _guardrail_failures(cfg.guardrails, challenger, champion, maximize_of)
    if failures:
        return Decision(False, "reject", failures, forced=force)

    if force:
        return Decision(True, "promote", [f"forced: {(force_reason or '').strip()}"], forced=True)

    primary = challenger.metrics.get(cfg.primary_metric)
    if not _finite(primary):
        return Decision(False, "reject", [
            f"{cfg.primary_metric} is undefined for the challenger on this holdout (e.g. a single class); "
            "widen the holdout or the window"])

    if champion is None:
        return Decision(True, "promote", ["no champion yet and the challenger passes every guardrail"])

    kept = _newer_champion(champion, challenger)
    if kept is not None:
        return kept

    if comparison is None:
        raise PolicyError("a champion exists, so the decision needs a comparison on the same holdout")
    return _compare(cfg, comparison)


def _check_force(force_reason: str | None, allow_force: bool) -> None:
    """A force promote must be allowed by the spec and carry a reason for the audit log."""
    if not allow_force:
        raise PolicyError("force promote is switched off for this model (promotion.allow_force: false)")
    if not (force_reason or "").strip():
        raise PolicyError("force promote needs a reason (the `force_reason` parameter); it goes to the audit log")


def _newer_champion(champion: Candidate, challenger: Candidate) -> Decision | None:
    """Keep a champion that may have been trained on newer data than the challenger; None when it was not."""
    if not champion.data_interval_end:
        return Decision(False, "keep", [
            f"champion v{champion.version} does not record the data it was trained on, so a newer champion "
            "cannot be ruled out; force with a reason to replace it"])
    if champion.data_interval_end > challenger.data_interval_end:
        return Decision(False, "keep", [
            f"champion v{champion.version} was trained on newer data (up to {champion.data_interval_end}) than "
            f"the challenger (up to {challenger.data_interval_end}); force with a reason to replace it"
        ])
    return None


def _compare(cfg: Evaluation, c: Comparison) -> Decision:
    """The decision on the primary metric's improvement and its bootstrap interval."""
    if not (_finite(c.improvement) and _finite(c.ci_low) and _finite(c.ci_high)):
        return Decision(False, "keep", [
            f"{c.metric} cannot be compared on this holdout (undefined for a resample or a model); "
            "the champion stays"])
    summary = (f"{c.metric}: challenger {c.challenger:.4f} vs champion {c.champion:.4f}, improvement "
               f"{c.improvement:+.4f} ({c.confidence:.0%} CI {c.ci_low:+.4f}..{c.ci_high:+.4f})")
    if c.improvement < cfg.min_improvement:
        return Decision(False, "keep", [f"{summary} is below the minimum improvement {cfg.min_improvement}"])
    if c.ci_low <= 0:
        return Decision(False, "keep", [f"{summary}: the interval includes no improvement, not confident enough"])
    return Decision(True, "promote", [f"{summary}: better by at least the minimum, with confidence"])
