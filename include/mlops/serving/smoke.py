"""The smoke test: rows of the version's own holdout, scored by the new endpoint, must equal the scores the
trainer computed offline for the same rows (within the spec's tolerance). It catches what only shows once the
model runs somewhere else: a missing library, another library version, a model that does not survive
serialisation."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable

from mlops.serving import endpoint

if TYPE_CHECKING:
    import pandas as pd

SAMPLE_ARTIFACT = "serving/smoke_sample.parquet"  # the trainer logs it with the model: features + `score`
SCORE_COLUMN = "__offline_score__"
SAMPLE_ROWS = 1000  # what the trainer keeps; serving.smoke.rows takes the first of them


class SmokeFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class SmokeReport:
    rows: int
    max_abs_diff: float
    tolerance: float
    mismatched_rows: int
    seconds: float
    version: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_frame(features: pd.DataFrame, scores: Any) -> pd.DataFrame:
    """What the trainer logs: the first holdout rows with the scores it computed for them."""
    out = features.head(SAMPLE_ROWS).reset_index(drop=True).copy()
    out[SCORE_COLUMN] = list(scores[: len(out)])
    return out


def check(url: str, sample: pd.DataFrame, features: list[str], rows: int, tolerance: float,
          timeout: float, what: str, session: Callable[[], Any] = endpoint.session,
          protocol: Any = endpoint.MLFLOW) -> SmokeReport:
    """`session` makes the HTTP client (a cluster backend's carries the API server's credentials); `protocol`
    is the server's (endpoint.MLFLOW or a V2Protocol)."""
    import numpy as np

    frame = sample.head(rows)
    answer = protocol.invoke(session(), url, protocol.body(frame[features]), timeout)
    if not answer.ok:
        raise SmokeFailed(f"{what}: the smoke request failed ({endpoint.describe(answer)})")
    served = np.asarray(answer.scores, dtype="float64")
    offline = frame[SCORE_COLUMN].to_numpy(dtype="float64")
    if served.shape != offline.shape:
        raise SmokeFailed(f"{what}: the endpoint returned {served.size} scores for {offline.size} rows")
    diff = np.abs(served - offline)
    bad = int((diff > tolerance).sum())
    report = SmokeReport(len(frame), float(diff.max()) if diff.size else 0.0, tolerance, bad, answer.seconds,
                         answer.version)
    if bad:
        worst = int(diff.argmax())
        raise SmokeFailed(
            f"{what}: {bad} of {len(frame)} holdout rows score differently online than offline (largest "
            f"difference {diff[worst]:.6g} at row {worst}: served {served[worst]:.6g}, offline {offline[worst]:.6g}; "
            f"tolerance {tolerance:g}). The model does not behave the same where it is served (libraries, "
            "serialisation); it is not rolled out")
    return report
