"""The spec's `monitoring:` section: when drift and quality are checked, the thresholds that count as
drift, the alarm rule (persistence, cooldown) and quality monitoring. Part of the model spec
(mlops.spec), kept beside the drift code that applies it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from mlops.documents import Strict


class DriftThresholds(Strict):
    psi: float = Field(0.2, gt=0, description="PSI above sampling noise that counts as drift.")
    wasserstein: float = Field(0.3, gt=0, description="Wasserstein distance in reference SDs that counts as drift.")
    ks_statistic: float = Field(0.1, gt=0, lt=1, description="KS statistic that counts as drift when significant.")
    ks_alpha: float = Field(0.01, gt=0, lt=1, description="Significance the KS statistic also needs.")
    js_distance: float = Field(0.1, gt=0, le=1, description="Jensen-Shannon distance (base 2) beyond noise.")
    unseen_share: float = Field(0.01, gt=0, le=1, description="Share of rows in new categories that is drift.")
    missing_rate_change: float = Field(0.05, gt=0, le=1, description="Change in missing-value rate that is drift.")
    min_rows: int = Field(30, ge=1, description="Fewer current rows than this give no verdict.")


class Quality(Strict):
    metric: str | None = Field(None, description="Defaults to evaluation.primary_metric.")
    max_degradation: float = Field(0.05, ge=0, description="How much worse than at training (absolute) is an alarm.")
    min_labelled_rows: int = Field(50, ge=1, description="Fewer labelled predictions give no verdict.")
    label_delay_days: int = Field(1, ge=0, le=365, description="How many days after scoring the labels arrive.")
    labels_uri: str | None = Field(
        None, description="Where a day's labels land: columns `row` (position in the scored partition) and the "
                          "target; {data_root} and {date} are filled in. Without it quality is not monitored.")


class Monitoring(Strict):
    schedule: str | None = Field("@daily", description="When drift and quality are checked.")
    columns: dict[str, Literal["critical", "normal", "ignore"]] = Field(
        default_factory=dict, description="Criticality per feature; unlisted features are `normal`.")
    min_normal_columns: int = Field(
        2, ge=1, description="Normal features that must drift together for a check to count (one critical is enough).")
    persistence: int = Field(2, ge=1, description="Drifted checks needed among the last `window` checks.")
    window: int = Field(3, ge=1, description="How many recent checks the persistence rule looks at.")
    cooldown_days: int = Field(3, ge=0, description="No drift alarm this many days after a new champion.")
    thresholds: DriftThresholds = DriftThresholds()
    quality: Quality = Quality()

    @model_validator(mode="after")
    def _persistence_fits(self) -> "Monitoring":
        if self.persistence > self.window:
            raise ValueError(f"persistence {self.persistence} cannot exceed window {self.window}: "
                             "drift in N of the last M checks needs N <= M")
        return self

