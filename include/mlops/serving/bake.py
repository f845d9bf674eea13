"""The canary bake: real recent traffic, replayed to the new version, measured against the guardrails.

Traffic is the feature rows of the newest partition the model scored in batch (what production sent it
most recently), one row per request as online clients send them. With a stable version serving, every row
goes to both (shadow): the new version's error rate and latency are measured, and its scores are compared
with the stable one's on the same rows (PSI of the scores; for binary classification also the share of rows
whose class flips). The bake sends `canary.requests` requests and lasts at least `canary.minutes`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Callable

from mlops.serving import endpoint

if TYPE_CHECKING:
    import pandas as pd

    from mlops.settings import Settings
    from mlops.spec import ModelSpec
    from mlops.spec.serving import ServingGuardrails

SCORED_LOOKBACK_DAYS = 60
PSI_BINS = 10
MIN_ROWS_FOR_SHIFT = 20  # fewer paired scores say nothing about a distribution


@dataclass(frozen=True)
class Traffic:
    rows: pd.DataFrame
    source: str  # where the rows came from, for the report


@dataclass
class BakeReport:
    requests: int = 0
    errors: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    stable_p50_ms: float | None = None
    stable_p99_ms: float | None = None
    stable_errors: int = 0
    psi: float | None = None
    disagreement: float | None = None
    seconds: float = 0.0
    traffic: str = ""
    versions_answered: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # guardrails broken
    first_error: str = ""
    stopped_early: bool = False

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "error_rate": self.error_rate, "passed": self.passed}

    def summary(self) -> str:
        shift = (f", PSI {self.psi:.4f}" if self.psi is not None else "") + (
            f", class disagreement {self.disagreement:.2%}" if self.disagreement is not None else "")
        stable = (f"; stable p50 {self.stable_p50_ms:.1f} ms, p99 {self.stable_p99_ms:.1f} ms"
                  if self.stable_p50_ms is not None and self.stable_p99_ms is not None else "")
        return (f"{self.requests} requests in {self.seconds:.1f} s ({self.traffic}): error rate "
                f"{self.error_rate:.2%}, p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms{stable}{shift}")


def newest_scored_traffic(spec: ModelSpec, settings: Settings) -> Traffic | None:
    """The feature rows of the newest partition that has batch predictions, or None when none has."""
    from mlops import data, scoring, storage

    newest = data.newest_partition_day(spec, settings.data_root)
    if newest is None:
        return None
    for back in range(SCORED_LOOKBACK_DAYS):
        day: date = newest - timedelta(days=back)
        uri = scoring.predictions_uri(spec, settings, day)
        fs, path = storage.filesystem(uri)
        if fs.exists(path):
            frame = scoring.read_partition(spec, settings, day)
            return Traffic(frame[list(spec.dataset.features)], f"the partition of {day}, scored in batch")
    return None


def _percentile_ms(seconds: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(seconds) * 1000, q)) if seconds else 0.0


def score_shift(stable: list[float], candidate: list[float], binary: bool) -> tuple[float | None, float | None]:
    """(PSI of the candidate's scores against the stable one's, share of rows whose class differs)."""
    import numpy as np

    from mlops.drift.stats import bin_counts, psi_from_counts, quantile_edges

    if len(stable) < MIN_ROWS_FOR_SHIFT:
        return None, None
    ref, cur = np.asarray(stable, dtype="float64"), np.asarray(candidate, dtype="float64")
    edges = quantile_edges(ref, PSI_BINS)
    psi = psi_from_counts(bin_counts(ref, edges), bin_counts(cur, edges))
    disagreement = float(np.mean((ref >= 0.5) != (cur >= 0.5))) if binary else None
    return float(psi), disagreement


def _already_broken(errors: int, slow: int, planned: int, g: ServingGuardrails) -> bool:
    """True once the bake must fail however the remaining requests go: more failures than the error budget of
    the whole bake, or so many requests over the p99 limit that the 99th percentile of all `planned` ones
    (numpy's linear interpolation) lands on a slow one whatever the others take."""
    slow_needed = planned - math.floor(0.99 * (planned - 1)) if planned else 1
    return errors > g.max_error_rate * planned or slow >= slow_needed


def judge(report: BakeReport, guardrails: ServingGuardrails) -> None:
    """Fill in the broken guardrails."""
    g = guardrails
    if report.error_rate > g.max_error_rate:
        report.failures.append(f"error rate {report.error_rate:.2%} > max {g.max_error_rate:.2%} "
                               f"({report.errors} of {report.requests} requests failed; first: {report.first_error})")
    if report.requests and report.p99_ms > g.max_p99_ms:
        report.failures.append(f"p99 latency {report.p99_ms:.1f} ms > max {g.max_p99_ms:g} ms")
    if report.psi is not None and report.psi > g.max_psi:
        report.failures.append(f"prediction shift: PSI {report.psi:.4f} against the stable version > max {g.max_psi:g}")
    if report.disagreement is not None and report.disagreement > g.max_disagreement:
        report.failures.append(f"prediction shift: {report.disagreement:.2%} of rows change class against the "
                               f"stable version > max {g.max_disagreement:.2%}")


def run(spec: ModelSpec, traffic: Traffic, candidate_url: str, stable_url: str | None,
        session: Callable[[], Any] = endpoint.session, protocol: Any = endpoint.MLFLOW) -> BakeReport:
    """Replay `traffic` (one row per request, cycling) until the request count and the minimum time are met.
    `session` makes the HTTP clients (a cluster backend's carry the API server's credentials)."""
    serving = spec.serving
    assert serving is not None, "only a model with a serving section bakes"
    canary, timeout = serving.canary, serving.timeouts.request_seconds
    report = BakeReport(traffic=traffic.source)
    rows = traffic.rows.reset_index(drop=True)
    if canary.requests == 0 or rows.empty:
        return report
    bodies = [protocol.body(rows.iloc[[i]]) for i in range(min(len(rows), canary.requests))]
    cand, stab = session(), session()
    latencies, stable_latencies, cand_scores, stable_scores = [], [], [], []
    start, min_seconds = time.monotonic(), canary.minutes * 60
    limits = serving.guardrails
    slow = 0
    while report.requests < canary.requests or time.monotonic() - start < min_seconds:
        if _already_broken(report.errors, slow, canary.requests, limits):
            report.stopped_early = True  # more requests cannot mend a broken guardrail: stop spending time
            break
        body = bodies[report.requests % len(bodies)]
        answer = protocol.invoke(cand, candidate_url, body, timeout)
        report.requests += 1
        slow += answer.seconds * 1000 > limits.max_p99_ms
        report.versions_answered[answer.version or "?"] = report.versions_answered.get(answer.version or "?", 0) + 1
        if not answer.ok:
            report.errors += 1
            report.first_error = report.first_error or endpoint.describe(answer)
            continue
        latencies.append(answer.seconds)
        if stable_url is None:
            continue
        old = protocol.invoke(stab, stable_url, body, timeout)
        if old.ok:
            stable_latencies.append(old.seconds)
            report.versions_answered[old.version or "?"] = report.versions_answered.get(old.version or "?", 0) + 1
            if report.requests <= len(bodies):  # each row once in the comparison
                cand_scores += answer.scores
                stable_scores += old.scores
        else:
            report.stable_errors += 1
    report.seconds = time.monotonic() - start
    report.p50_ms, report.p99_ms = _percentile_ms(latencies, 50), _percentile_ms(latencies, 99)
    if stable_latencies:
        report.stable_p50_ms, report.stable_p99_ms = (_percentile_ms(stable_latencies, 50),
                                                      _percentile_ms(stable_latencies, 99))
    report.psi, report.disagreement = score_shift(stable_scores, cand_scores,
                                                  spec.dataset.task == "binary_classification")
    judge(report, serving.guardrails)
    return report
