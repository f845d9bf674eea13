"""The spec's `serving:` section: where and how a model's deployed version answers online requests,
and the gates a new version passes before it takes the traffic (readiness, smoke test, canary bake)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from mlops.documents import Strict
from mlops.spec.approval import Approval

_QUANTITY = re.compile(r"\d+(\.\d+)?(m|Ki|Mi|Gi|Ti|K|M|G|T)?")


class Resources(Strict):
    cpu: str = Field("500m", description="CPU request of each replica (Kubernetes quantity, e.g. '500m', '2').")
    memory: str = Field("1Gi", description="Memory request and limit of each replica, e.g. '1Gi'.")

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, value: str) -> str:
        if not _QUANTITY.fullmatch(value):
            raise ValueError(f"'{value}' is not a Kubernetes quantity; write it like '500m', '2' or '1Gi'")
        return value


class Timeouts(Strict):
    ready_seconds: int = Field(
        120, ge=5, le=3600, description="How long a new version may take to answer its health check; longer is a "
        "failed rollout (probe timeout).")
    request_seconds: float = Field(
        30, gt=0, le=600, description="The server's limit on one request, and the client's during smoke and bake.")
    drain_seconds: int = Field(
        30, ge=0, le=3600, description="How long a retired version may finish the requests it holds.")


class Smoke(Strict):
    rows: int = Field(50, ge=1, le=1000, description="Rows of the version's own holdout sent to the new endpoint.")
    tolerance: float = Field(
        1e-6, ge=0, description="Largest absolute difference allowed between a served score and the score the "
        "trainer computed offline for the same row.")


class Canary(Strict):
    requests: int = Field(
        200, ge=0, le=1_000_000, description="Requests the bake sends to the new version (and, in shadow, to the "
        "stable one): feature rows of the newest scored partition. 0 skips the bake.")
    minutes: float = Field(0, ge=0, le=1440, description="The bake lasts at least this long.")
    traffic_percent: int = Field(
        10, ge=0, le=50, description="kserve backend: the share of live traffic the new version takes during "
        "the bake (KServe's canary), beside the shadow replay. The other backends bake in shadow only.")


class ServingGuardrails(Strict):
    max_error_rate: float = Field(0.0, ge=0, le=1, description="Share of bake requests that may fail.")
    max_p99_ms: float = Field(1000, gt=0, description="Slowest the new version's 99th percentile latency may be.")
    max_psi: float = Field(
        0.2, ge=0, description="Largest population stability index between the scores of the new version and of "
        "the stable one on the same rows.")
    max_disagreement: float = Field(
        0.05, ge=0, le=1, description="Binary classification: largest share of rows whose class (score >= 0.5) "
        "differs between the new version and the stable one.")


class Autoscaling(Strict):
    min_replicas: int = Field(1, ge=1, le=100, description="Fewest pods the HorizontalPodAutoscaler keeps.")
    max_replicas: int = Field(3, ge=1, le=100, description="Most pods it may scale the deployed version to.")
    target_cpu_percent: int = Field(
        70, ge=1, le=100, description="Average CPU use (of the request) the autoscaler aims each pod at.")

    @model_validator(mode="after")
    def _bounds(self) -> "Autoscaling":
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas ({self.max_replicas}) must be at least min_replicas ({self.min_replicas})")
        return self


class Serving(Strict):
    backend: Literal["local", "kubernetes", "kserve"] = Field(
        "local", description="local: MLflow scoring server processes on this machine's loopback, supervised by "
        "the platform (blue/green on one stable address, shadow bake). kubernetes: a Deployment per version "
        "behind the model's Service in the cluster of the kubernetes connection (blue/green, shadow bake "
        "through the API server's service proxy), with a PodDisruptionBudget and, with `autoscaling`, a "
        "HorizontalPodAutoscaler. kserve: one KServe InferenceService (Standard mode, KServe 0.20+) served "
        "by the cluster's MLflow runtime over the v2 protocol; the new version is a canary with "
        "`canary.traffic_percent` of the live traffic during the bake, then promoted.")
    kserve_mode: Literal["Standard", "Serverless"] = Field(
        "Standard", description="kserve backend: KServe's deployment mode. Standard: the candidate is a "
        "`spec.canary` variant (KServe 0.20+). Serverless (Knative): the candidate is a new revision and "
        "`canaryTrafficPercent` splits the traffic.")
    replicas: int = Field(1, ge=1, le=100, description="Server processes (local) or pods serving the model (the "
                          "deployed version's starting size when `autoscaling` is set).")
    autoscaling: Autoscaling | None = Field(
        None, description="kubernetes backend: scale the deployed version between these bounds on CPU use.")
    resources: Resources = Resources()
    pool: str = Field("cpu", description="Node pool of the catalogue the replicas run on (a GPU pool for GPU serving).")
    gpus: int = Field(0, ge=0, le=16, description="GPUs per replica.")
    timeouts: Timeouts = Timeouts()
    smoke: Smoke = Smoke()
    canary: Canary = Canary()
    guardrails: ServingGuardrails = ServingGuardrails()
    approval: Approval | None = Field(
        None, description="Ask a person after the canary bake, before the new version takes all the traffic: "
        "approve switches, reject or timeout stops the candidate (the stable version serves on).")
    deployed_alias: str = Field("deployed", description="Registry alias of the version that serves.")
    previous_alias: str = Field("previous-deployed", description="Registry alias of the version it replaced.")

    @model_validator(mode="after")
    def _aliases(self) -> "Serving":
        if self.deployed_alias == self.previous_alias:
            raise ValueError("previous_alias must differ from deployed_alias")
        if self.autoscaling is not None and self.backend == "local":
            raise ValueError("autoscaling needs a cluster backend (kubernetes); the local backend runs a fixed "
                             "number of replicas: remove autoscaling or set backend: kubernetes")
        if self.autoscaling is not None and not (
                self.autoscaling.min_replicas <= self.replicas <= self.autoscaling.max_replicas):
            raise ValueError(f"replicas ({self.replicas}) must lie within autoscaling's bounds "
                             f"({self.autoscaling.min_replicas}..{self.autoscaling.max_replicas})")
        return self
