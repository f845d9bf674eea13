"""The model spec's typed shape: one pydantic model per section, each checked on its own; checks across
sections live in checks.py. The spec also names what Airflow knows the model by: its DAG ids, its
assets and the start of its schedules."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime, timezone
from typing import Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from mlops.documents import Strict
from mlops.drift.monitoring_spec import Monitoring
from mlops.metrics import METRICS
from mlops.spec.approval import Approval
from mlops.spec.serving import Serving
from mlops.spec.tuning import Tuning

API_VERSION = "mlops.airflow/v1"
NAME_PATTERN = r"^[a-z][a-z0-9_]{1,62}$"
# Every DAG parse reads every spec and the fleet page shows descriptions: keep both small.
MAX_DESCRIPTION = 2000

# A model's DAGs are `<model>__<kind>`; its assets `mlops://models/<model>/<kind>`.
DAG_KINDS = ("train", "score", "monitor", "rollback", "deploy", "tune")
ASSET_KINDS = ("champion", "predictions", "retrain-requested")


def dag_id(model: str, kind: str) -> str:
    """The id of one of a model's DAGs, for places that know only the model's name."""
    if kind not in DAG_KINDS:
        raise ValueError(f"unknown DAG kind '{kind}'; use one of {DAG_KINDS}")
    return f"{model}__{kind}"


def asset_uri(model: str, kind: str) -> str:
    """The URI of one of the Assets a model's DAGs exchange."""
    if kind not in ASSET_KINDS:
        raise ValueError(f"unknown asset kind '{kind}'; use one of {ASSET_KINDS}")
    return f"mlops://models/{model}/{kind}"


class Feature(Strict):
    type: Literal["int", "float", "category", "bool"]
    min: float | None = Field(None, description="Smallest valid value (numeric features).")
    max: float | None = Field(None, description="Largest valid value (numeric features).")
    values: list[str] | None = Field(None, description="Allowed values (category features).")
    nullable: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> "Feature":
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max}); swap them")
        if self.values is not None and self.type != "category":
            raise ValueError("`values` only applies to type: category; remove it or change the type")
        return self


class Window(Strict):
    days: int = Field(28, ge=1, le=3660, description="Daily partitions in the training window.")
    min_rows_per_partition: int = Field(1, ge=0, description="A partition with fewer rows fails validation.")
    late_retries: int = Field(
        3, ge=0, le=48, description="When only the newest partition is missing, wait and check again this often.")
    late_retry_minutes: int = Field(20, ge=1, le=720, description="Minutes between those checks.")


class Dataset(Strict):
    uri: str = Field(
        description="Partition URI template. `{data_root}` is the platform's data root, `{date}` the "
        "partition day (YYYY-MM-DD). Local paths, file:// and gs:// are supported."
    )
    format: Literal["parquet", "csv"] = "parquet"
    task: Literal["binary_classification", "regression"]
    target: str
    features: dict[str, Feature]
    window: Window = Window()

    @field_validator("uri")
    @classmethod
    def _has_date(cls, uri: str) -> str:
        if "{date}" not in uri:
            raise ValueError("the URI template must contain `{date}`, "
                             "e.g. '{data_root}/churn/date={date}/part-0.parquet'")
        return uri

    @field_validator("features")
    @classmethod
    def _some_features(cls, features: dict[str, Feature]) -> dict[str, Feature]:
        if not features:
            raise ValueError("declare at least one feature column with its type")
        return features

    @property
    def columns(self) -> list[str]:
        return [*self.features, self.target]


class Range(Strict):
    min: float | None = Field(None, description="Smallest value the trigger form accepts.")
    max: float | None = Field(None, description="Largest value the trigger form accepts.")

    @model_validator(mode="after")
    def _ordered(self) -> "Range":
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max}); swap them")
        return self


class Trainer(Strict):
    function: str = Field(description="`module:function` taking (train_df, params) and returning a fitted model.")
    predict: str | None = Field(
        None,
        description="Optional `module:function` (model, features_df) -> scores; defaults to predict_proba/predict.",
    )
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    hyperparameter_ranges: dict[str, Range] = Field(
        default_factory=dict, description="Bounds the trigger form enforces on numeric hyperparameter overrides.")
    seed: int = 0
    image: str | None = Field(None, description="Trainer image for pods; defaults to the platform's image.")

    @model_validator(mode="after")
    def _ranges_fit(self) -> "Trainer":
        problems = []
        for name, r in self.hyperparameter_ranges.items():
            if name not in self.hyperparameters:
                problems.append(f"'{name}' is not one of the hyperparameters {sorted(self.hyperparameters)}")
                continue
            default = self.hyperparameters[name]
            if default is None:  # "unset" (e.g. no depth limit); the range applies to values given
                continue
            if isinstance(default, bool) or not isinstance(default, (int, float)):
                problems.append(f"'{name}' has a range but its default {default!r} is not a number")
            elif (r.min is not None and default < r.min) or (r.max is not None and default > r.max):
                problems.append(f"'{name}': the default {default} lies outside its range {r.min}..{r.max}")
        if problems:
            raise ValueError("hyperparameter_ranges: " + "; ".join(problems))
        return self

    @field_validator("function", "predict")
    @classmethod
    def _module_function(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", value):
            raise ValueError(f"'{value}' is not `module:function`; write it like 'trainers.churn:train'")
        return value


class Compute(Strict):
    backend: Literal["local", "kubernetes", "gke"] = "local"
    pool: str = "cpu"
    gpus: int = Field(0, ge=0, le=16)
    cpu: str | None = Field(None, description="CPU request of the pod; defaults to the pool's.")
    memory: str | None = Field(None, description="Memory request and limit of the pod; defaults to the pool's.")
    timeout_minutes: int = Field(60, ge=1)
    retries: int = Field(1, ge=0, le=10, description="Retries of the train step; only failures a retry can fix "
                         "(eviction, preemption, no node yet, a tracking server or bucket briefly down) are "
                         "retried. On a spot pool the last one runs on the pool's on-demand fallback.")
    retry_delay_seconds: int = Field(60, ge=1, le=3600, description="Wait before a retry of the train step.")

    @field_validator("memory")
    @classmethod
    def _quantity(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)?", value):
            raise ValueError(f"'{value}' is not a Kubernetes memory quantity; write it like '4Gi' or '512Mi'")
        return value


class DuplicateRows(Strict):
    severity: Literal["blocking", "warning"] = Field(
        "warning", description="blocking stops the run when too many rows repeat; warning only reports them.")
    key: list[str] | None = Field(
        None, min_length=1, description="Columns that together identify a row (e.g. an id and a timestamp); "
        "default: every column of dataset.features and the target.")
    max_fraction: float = Field(
        0.01, ge=0, le=1, description="Share of the window's rows that may share their key with another row: "
        "identical rows also occur by chance in data without an identifying column. 0 tolerates none, 1 turns "
        "the check off.")

    @field_validator("key")
    @classmethod
    def _each_once(cls, key: list[str] | None) -> list[str] | None:
        columns = key or []
        twice = sorted({c for c in columns if columns.count(c) > 1})
        if twice:
            raise ValueError(f"listed more than once: {', '.join(twice)}; list each column once")
        return key

    def key_columns(self, declared: list[str]) -> list[str]:
        return list(self.key) if self.key else list(declared)

    def key_problems(self, declared: list[str]) -> list[str]:
        return [f"validation.duplicates.key: '{c}' is not a declared column ({', '.join(declared)}); fix the name "
                "or declare it under dataset.features" for c in self.key or [] if c not in declared]


class Validation(Strict):
    suite: str | None = Field(None, description="Extra expectations: include/expectations/<suite>.yaml.")
    severity: Literal["blocking", "warning"] = Field(
        "blocking", description="Severity of the expectations derived from the dataset's columns."
    )
    duplicates: DuplicateRows = Field(
        DuplicateRows(), description="Rows that repeat in the training window (a partition landed twice, a "
        "join that fanned out). Checked on every window.")


class Holdout(Strict):
    strategy: Literal["time", "random"] = "time"
    fraction: float = Field(0.2, gt=0, lt=1)


class Guardrail(Strict):
    metric: str
    min: float | None = None
    max: float | None = None
    max_degradation: float | None = Field(
        None, ge=0, description="How much worse than the champion this metric may get (absolute)."
    )

    @model_validator(mode="after")
    def _has_a_limit(self) -> "Guardrail":
        if self.min is None and self.max is None and self.max_degradation is None:
            raise ValueError("a guardrail needs at least one of min, max or max_degradation")
        return self


class Explanation(Strict):
    """Permutation importance on the holdout, for challenger and champion, as evidence for the decision."""

    enabled: bool = Field(True, description="Measure and log it with every trained version.")
    repeats: int = Field(5, ge=1, le=50, description="Shuffles per feature (the importance is their mean).")
    max_rows: int = Field(2000, ge=50, le=1_000_000, description="Holdout rows it is measured on (a seeded "
                          "sample when the holdout is larger; the same rows for both models).")
    max_shift: float = Field(
        0.25, gt=0, le=1, description="A feature whose share of the importance moves by this much between "
        "champion and challenger is named in the decision's warnings.")
    block_on_shift: bool = Field(
        False, description="Make such a jump a gate: the challenger is rejected instead of warned about.")


class Evaluation(Strict):
    holdout: Holdout = Holdout()
    explanation: Explanation = Explanation()
    primary_metric: str
    direction: Literal["maximize", "minimize"] | None = Field(
        None, description="Defaults to the metric's natural direction."
    )
    min_improvement: float = Field(0.0, ge=0)
    confidence: float = Field(0.95, gt=0.5, lt=1)
    bootstrap_samples: int = Field(300, ge=50, le=10000)
    guardrails: list[Guardrail] = Field(default_factory=list)

    @property
    def maximize(self) -> bool:
        if self.direction is not None:
            return self.direction == "maximize"
        return METRICS[self.primary_metric].higher_is_better


class Promotion(Strict):
    alias: str = "champion"
    previous_alias: str = "previous-champion"
    allow_force: bool = True
    approval: Approval | None = Field(
        None, description="Ask a person before the champion moves (Airflow's Required actions): the request shows "
        "the decision, the metrics and links; approve promotes, reject or timeout leaves the champion as it is.")


class Scoring(Strict):
    schedule: str | None = Field("@daily", description="When the champion scores new partitions.")
    output_uri: str = Field(
        "{data_root}/predictions/{model}/date={date}/part-0.parquet",
        description="Where predictions go; {data_root}, {model} and {date} are filled in.")



NotificationEvent = Literal["validation_failed", "promoted", "drift_alarm", "rolled_back", "deployed",
                            "deploy_rolled_back", "approval_requested"]
NOTIFICATION_EVENTS: tuple[NotificationEvent, ...] = get_args(NotificationEvent)
_EMAIL = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+")


class Notifications(Strict):
    """Who hears about the model's events, by email through an Airflow SMTP connection."""

    email: list[str] = Field(
        default_factory=list,
        description="Recipients (one address or a list). Without any, nothing is sent.")
    events: list[NotificationEvent] = Field(
        default_factory=lambda: list(NOTIFICATION_EVENTS),
        description="What to send: validation_failed (a validation gate of training or monitoring failed), "
                    "promoted (the champion alias moved), drift_alarm (the monitor asked for retraining), "
                    "rolled_back (the champion was rolled back), deployed (a new version took the online "
                    "traffic), deploy_rolled_back (a rollout failed and was undone, or the endpoint was moved back "
                    "on request), approval_requested (a promotion or a deployment waits for a "
                    "person's approval; the mail links to the request). Default: all.")
    smtp_conn_id: str = Field(
        "smtp_default", min_length=1,
        description="Airflow connection of type smtp the mails are sent through (host, port, login, TLS "
                    "and from_email in its extra).")

    @field_validator("email", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("email")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        bad = [a for a in value if not _EMAIL.fullmatch(a)]
        if bad:
            raise ValueError(f"not an email address: {', '.join(repr(a) for a in bad)}; write one address per "
                             "list item, like 'retention-oncall@example.com'")
        return value

    @field_validator("events")
    @classmethod
    def _each_once(cls, value: list[str]) -> list[str]:
        twice = sorted({e for e in value if value.count(e) > 1})
        if twice:
            raise ValueError(f"listed more than once: {', '.join(twice)}; list each event once")
        return value

    def wants(self, event: str) -> bool:
        """Whether a mail goes out for this event: someone to send it to and the event selected."""
        if event not in NOTIFICATION_EVENTS:
            raise ValueError(f"unknown notification event '{event}'; use one of {NOTIFICATION_EVENTS}")
        return bool(self.email) and event in self.events


class ModelSpec(Strict):
    apiVersion: Literal["mlops.airflow/v1"]
    name: str = Field(pattern=NAME_PATTERN, description="Lower case, digits and underscores; names the DAGs.")
    description: str = Field("", max_length=MAX_DESCRIPTION, description="Shown on the DAG and the fleet page; "
                             f"at most {MAX_DESCRIPTION} characters (link to longer documents).")
    owner: str = Field(min_length=1, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=20)
    schedule: str | None = "@daily"
    start_date: date = date(2026, 1, 1)
    dataset: Dataset
    trainer: Trainer
    compute: Compute = Compute()
    validation: Validation = Validation()
    evaluation: Evaluation
    promotion: Promotion = Promotion()
    scoring: Scoring = Scoring()
    monitoring: Monitoring = Monitoring()
    serving: Serving | None = Field(
        None, description="Serve the champion online (a `<model>__deploy` DAG); without it the model is scored "
        "in batch only.")
    tuning: Tuning | None = Field(
        None, description="Hyperparameter sweeps (a `<model>__tune` DAG): the search space and budget; the best "
        "parameters are retrained on the full window and go through the same gates as any challenger.")
    notifications: Notifications = Field(
        Notifications(), description="Email on failed validation gates, promotions, drift alarms and rollbacks.")

    @property
    def dag_id(self) -> str:
        """The training DAG's id: the model's main DAG."""
        return self.dag_id_of("train")

    @property
    def score_dag_id(self) -> str:
        return self.dag_id_of("score")

    @property
    def monitor_dag_id(self) -> str:
        return self.dag_id_of("monitor")

    @property
    def rollback_dag_id(self) -> str:
        return self.dag_id_of("rollback")

    @property
    def deploy_dag_id(self) -> str:
        return self.dag_id_of("deploy")

    @property
    def tune_dag_id(self) -> str:
        return self.dag_id_of("tune")

    def dag_id_of(self, kind: str) -> str:
        return dag_id(self.name, kind)

    def asset_uri(self, kind: str) -> str:
        return asset_uri(self.name, kind)

    @property
    def start_datetime(self) -> datetime:
        """Midnight UTC of start_date: where the model's DAG schedules begin."""
        return datetime.combine(self.start_date, datetime.min.time(), tzinfo=timezone.utc)

    def content_hash(self) -> str:
        """Hash of what shapes a trained model: the data, the trainer and how the holdout is cut.
        Scheduling, compute, validation and promotion settings can change without retraining."""
        relevant = self.model_dump(mode="json", include={"name", "dataset", "trainer"})
        relevant["holdout"] = self.evaluation.holdout.model_dump(mode="json")
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def json_schema() -> dict[str, Any]:
    """The spec's JSON Schema, for editors (committed as include/models/model-spec.schema.json)."""
    schema = ModelSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Model spec"
    return schema
