"""The model spec: one YAML file per model, typed, checked all at once.

`load_spec(path)` returns a `ModelSpec` or raises `SpecError` listing every problem with the file,
the field and how to fix it. Only pydantic and PyYAML are imported here: the DAG factory calls this
at parse time.

Command line:
    python -m mlops.spec validate include/models/*.yaml
    python -m mlops.spec schema > model-spec.schema.json
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlops.metrics import METRICS, metrics_for

API_VERSION = "mlops.airflow/v1"
# libyaml's loader when PyYAML has it: parsing specs is most of the DAG factory's cost.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(text: str):
    return yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
NAME_PATTERN = r"^[a-z][a-z0-9_]{1,62}$"
# Every DAG parse reads every spec and the fleet page shows descriptions: keep both small.
MAX_DESCRIPTION = 2000
MAX_SPEC_BYTES = 256 * 1024
_PRESETS = {"@once", "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@continuous"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Feature(_Strict):
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


class Window(_Strict):
    days: int = Field(28, ge=1, le=3660, description="Daily partitions in the training window.")
    min_rows_per_partition: int = Field(1, ge=0, description="A partition with fewer rows fails validation.")
    late_retries: int = Field(
        3, ge=0, le=48, description="When only the newest partition is missing, wait and check again this often.")
    late_retry_minutes: int = Field(20, ge=1, le=720, description="Minutes between those checks.")


class Dataset(_Strict):
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
            raise ValueError("the URI template must contain `{date}`, e.g. '{data_root}/churn/date={date}/part-0.parquet'")
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


class Range(_Strict):
    min: float | None = Field(None, description="Smallest value the trigger form accepts.")
    max: float | None = Field(None, description="Largest value the trigger form accepts.")

    @model_validator(mode="after")
    def _ordered(self) -> "Range":
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max}); swap them")
        return self


class Trainer(_Strict):
    function: str = Field(description="`module:function` taking (train_df, params) and returning a fitted model.")
    predict: str | None = Field(
        None, description="Optional `module:function` (model, features_df) -> scores; defaults to predict_proba/predict."
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


class Compute(_Strict):
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


class DuplicateRows(_Strict):
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
        twice = sorted({c for c in key or [] if key.count(c) > 1})
        if twice:
            raise ValueError(f"listed more than once: {', '.join(twice)}; list each column once")
        return key

    def key_columns(self, declared: list[str]) -> list[str]:
        return list(self.key) if self.key else list(declared)

    def key_problems(self, declared: list[str]) -> list[str]:
        return [f"validation.duplicates.key: '{c}' is not a declared column ({', '.join(declared)}); fix the name "
                "or declare it under dataset.features" for c in self.key or [] if c not in declared]


class Validation(_Strict):
    suite: str | None = Field(None, description="Extra expectations: include/expectations/<suite>.yaml.")
    severity: Literal["blocking", "warning"] = Field(
        "blocking", description="Severity of the expectations derived from the dataset's columns."
    )
    duplicates: DuplicateRows = Field(
        DuplicateRows(), description="Rows that repeat in the training window (a partition landed twice, a "
        "join that fanned out). Checked on every window.")


class Holdout(_Strict):
    strategy: Literal["time", "random"] = "time"
    fraction: float = Field(0.2, gt=0, lt=1)


class Guardrail(_Strict):
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


class Evaluation(_Strict):
    holdout: Holdout = Holdout()
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


class Promotion(_Strict):
    alias: str = "champion"
    previous_alias: str = "previous-champion"
    allow_force: bool = True


class Scoring(_Strict):
    schedule: str | None = Field("@daily", description="When the champion scores new partitions.")
    output_uri: str = Field(
        "{data_root}/predictions/{model}/date={date}/part-0.parquet",
        description="Where predictions go; {data_root}, {model} and {date} are filled in.")


class DriftThresholds(_Strict):
    psi: float = Field(0.2, gt=0, description="PSI above sampling noise that counts as drift.")
    wasserstein: float = Field(0.3, gt=0, description="Wasserstein distance in reference SDs that counts as drift.")
    ks_statistic: float = Field(0.1, gt=0, lt=1, description="KS statistic that counts as drift when significant.")
    ks_alpha: float = Field(0.01, gt=0, lt=1, description="Significance the KS statistic also needs.")
    js_distance: float = Field(0.1, gt=0, le=1, description="Jensen-Shannon distance (base 2) beyond noise.")
    unseen_share: float = Field(0.01, gt=0, le=1, description="Share of rows in new categories that is drift.")
    missing_rate_change: float = Field(0.05, gt=0, le=1, description="Change in missing-value rate that is drift.")
    min_rows: int = Field(30, ge=1, description="Fewer current rows than this give no verdict.")


class Quality(_Strict):
    metric: str | None = Field(None, description="Defaults to evaluation.primary_metric.")
    max_degradation: float = Field(0.05, ge=0, description="How much worse than at training (absolute) is an alarm.")
    min_labelled_rows: int = Field(50, ge=1, description="Fewer labelled predictions give no verdict.")
    label_delay_days: int = Field(1, ge=0, le=365, description="How many days after scoring the labels arrive.")
    labels_uri: str | None = Field(
        None, description="Where a day's labels land: columns `row` (position in the scored partition) and the "
                          "target; {data_root} and {date} are filled in. Without it quality is not monitored.")


class Monitoring(_Strict):
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


NotificationEvent = Literal["validation_failed", "promoted", "drift_alarm", "rolled_back"]
NOTIFICATION_EVENTS: tuple[str, ...] = get_args(NotificationEvent)
_EMAIL = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+")


class Notifications(_Strict):
    """Who hears about the model's events, by email through an Airflow SMTP connection."""

    email: list[str] = Field(
        default_factory=list,
        description="Recipients (one address or a list). Without any, nothing is sent.")
    events: list[NotificationEvent] = Field(
        default_factory=lambda: list(NOTIFICATION_EVENTS),
        description="What to send: validation_failed (a validation gate of training or monitoring failed), "
                    "promoted (the champion alias moved), drift_alarm (the monitor asked for retraining), "
                    "rolled_back (the champion was rolled back). Default: all four.")
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


class ModelSpec(_Strict):
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
    notifications: Notifications = Field(
        Notifications(), description="Email on failed validation gates, promotions, drift alarms and rollbacks.")

    @property
    def dag_id(self) -> str:
        return f"{self.name}__train"

    @property
    def score_dag_id(self) -> str:
        return f"{self.name}__score"

    @property
    def monitor_dag_id(self) -> str:
        return f"{self.name}__monitor"

    def content_hash(self) -> str:
        """Hash of what shapes a trained model: the data, the trainer and how the holdout is cut.
        Scheduling, compute, validation and promotion settings can change without retraining."""
        relevant = self.model_dump(mode="json", include={"name", "dataset", "trainer"})
        relevant["holdout"] = self.evaluation.holdout.model_dump(mode="json")
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


class SpecError(ValueError):
    """Every problem of one spec file, each with the field and the fix."""

    def __init__(self, path: str | Path, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{self.path}: {len(problems)} problem(s) in the model spec:\n{lines}")


def _loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _fix_for(err: dict) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "add this field"
    if kind == "extra_forbidden":
        return "remove it or fix its spelling (see `python -m mlops.spec schema`)"
    if kind == "literal_error":
        return f"use one of {ctx.get('expected', 'the allowed values')}"
    if kind == "string_pattern_mismatch":
        return f"make it match {ctx.get('pattern')}"
    if kind.startswith(("greater", "less")):
        return "change the value to fit the limit"
    if kind == "value_error":
        return "see the message"
    if kind in ("string_too_long", "too_long"):
        return f"shorten it to at most {ctx.get('max_length')} (link to a longer document instead)"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return f"give a value of the right type ({kind.replace('_', ' ')})"
    return "see `python -m mlops.spec schema` for the expected shape"


def _valid_cron(expression: str) -> bool:
    if len(expression.split()) not in (5, 6):
        return False
    try:
        from croniter import croniter  # what Airflow's cron timetables use
    except ImportError:  # the trainer image has no Airflow: the shape check is all it needs
        return True
    return bool(croniter.is_valid(expression))


def in_packages(ref: str, packages: tuple[str, ...]) -> bool:
    module = ref.partition(":")[0]
    return any(module == p or module.startswith(p + ".") for p in packages)


def _trainer_package_problems(spec: ModelSpec) -> list[str]:
    from mlops.settings import trainer_packages

    packages = trainer_packages()
    return [f"trainer.{field}: '{ref}' is outside the platform's trainer packages ({', '.join(packages)}); put the "
            "function in a module of one of them, or add its package to MLOPS_TRAINER_PACKAGES"
            for field, ref in (("function", spec.trainer.function), ("predict", spec.trainer.predict))
            if ref and not in_packages(ref, packages)]


def _semantic_problems(spec: ModelSpec, expectations_dir: Path | None, catalogue=None) -> list[str]:
    """Checks across fields (and against the suite file and the pool catalogue), once the shape is right."""
    problems = _trainer_package_problems(spec)
    if catalogue is not None:
        from mlops.compute import pool_problems

        problems += pool_problems(catalogue, spec.compute.pool, spec.compute.gpus)
    ds, ev = spec.dataset, spec.evaluation
    if ds.target in ds.features:
        problems.append(f"dataset.target: '{ds.target}' is also listed under dataset.features; remove it there")
    allowed = metrics_for(ds.task)
    if ev.primary_metric not in allowed:
        problems.append(
            f"evaluation.primary_metric: '{ev.primary_metric}' is not a {ds.task} metric; use one of {allowed}"
        )
    for i, g in enumerate(ev.guardrails):
        if g.metric not in allowed:
            problems.append(f"evaluation.guardrails.{i}.metric: '{g.metric}' is not a {ds.task} metric; use one of {allowed}")
    for field_name, schedule in (("schedule", spec.schedule), ("scoring.schedule", spec.scoring.schedule),
                                 ("monitoring.schedule", spec.monitoring.schedule)):
        if schedule is not None and schedule not in _PRESETS and not _valid_cron(schedule):
            problems.append(
                f"{field_name}: '{schedule}' is neither a valid cron expression nor one of {sorted(_PRESETS)}; "
                "use e.g. '0 3 * * *' or null for manual runs only"
            )
    for column in spec.monitoring.columns:
        if column not in ds.features:
            problems.append(f"monitoring.columns.{column}: not a feature of dataset.features "
                            f"({', '.join(ds.features)}); fix the name or remove it")
    quality_metric = spec.monitoring.quality.metric
    if quality_metric is not None and quality_metric not in allowed:
        problems.append(f"monitoring.quality.metric: '{quality_metric}' is not a {ds.task} metric; use one of {allowed}")
    problems += spec.validation.duplicates.key_problems(ds.columns)
    if spec.promotion.alias == spec.promotion.previous_alias:
        problems.append("promotion.previous_alias: must differ from promotion.alias")
    if spec.validation.suite and expectations_dir is not None:
        suite_file = expectations_dir / f"{spec.validation.suite}.yaml"
        if not suite_file.is_file():
            problems.append(
                f"validation.suite: no suite file {suite_file}; create it or remove validation.suite"
            )
        else:
            problems += _suite_problems(suite_file)
    return problems


class SuiteItem(_Strict):
    """One entry of include/expectations/<suite>.yaml: a GX Core expectation, declared as data."""

    type: str = Field(pattern=r"^expect_[a-z0-9_]+$", description="GX expectation name in snake case.")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    severity: Literal["blocking", "warning"] = "blocking"
    batch: Literal["rows", "partitions"] = "rows"
    description: str | None = None


def load_suite(suite_file: Path) -> list[SuiteItem]:
    """The suite's expectations, or SpecError naming every malformed entry."""
    try:
        doc = read_yaml(Path(suite_file).read_text()) or {}
    except yaml.YAMLError as exc:
        raise SpecError(suite_file, [f"(YAML syntax): {exc}; fix the file"]) from None
    items = doc.get("expectations") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise SpecError(suite_file, ["expectations: needs a top-level `expectations:` list"])
    parsed, problems = [], []
    for i, item in enumerate(items):
        try:
            parsed.append(SuiteItem.model_validate(item))
        except ValidationError as exc:
            problems += [f"expectations.{i}.{_loc(e['loc'])}: {e['msg']} -> fix: {_fix_for(e)}" for e in exc.errors()]
    if problems:
        raise SpecError(suite_file, problems)
    return parsed


def _suite_problems(suite_file: Path) -> list[str]:
    stat = suite_file.stat()
    return _suite_problems_cached(suite_file, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _suite_problems_cached(suite_file: Path, mtime_ns: int, size: int) -> list[str]:
    """Many specs share a suite; parse it once per version of the file."""
    try:
        load_suite(suite_file)
    except SpecError as exc:
        return [f"validation.suite: {suite_file.name} {p}" for p in exc.problems]
    return []


def unknown_expectations(suite_file: Path) -> list[str]:
    """Names GX does not know. Imports GX, so only the command line calls it, never DAG parsing."""
    import great_expectations as gx

    return [f"validation.suite: {suite_file.name} expectations.{i}.type: GX has no '{item.type}'; check the name"
            for i, item in enumerate(load_suite(suite_file))
            if not hasattr(gx.expectations, "".join(p.capitalize() for p in item.type.split("_")))]


def parse_spec(data: Any, path: str | Path = "<spec>", expectations_dir: Path | None = None,
               catalogue=None) -> ModelSpec:
    if not isinstance(data, dict):
        raise SpecError(path, ["(top level): the file must hold a mapping of fields; see `python -m mlops.spec schema`"])
    try:
        spec = ModelSpec.model_validate(data)
    except ValidationError as exc:
        problems = [f"{_loc(e['loc'])}: {e['msg']} -> fix: {_fix_for(e)}" for e in exc.errors()]
        raise SpecError(path, problems) from None
    problems = _semantic_problems(spec, expectations_dir, catalogue)
    if problems:
        raise SpecError(path, problems)
    stem = Path(str(path)).stem
    if path != "<spec>" and stem != spec.name:
        raise SpecError(path, [f"name: '{spec.name}' differs from the file name '{stem}'; rename one of them"])
    return spec


def load_spec(path: str | Path, expectations_dir: Path | None = None, catalogue=None) -> ModelSpec:
    """Load and check one spec. The suite folder and the pool catalogue default to the `expectations/`
    and `compute/` folders beside the spec's folder, when they exist."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError(path, [f"(file): {size:,} bytes; a spec is at most {MAX_SPEC_BYTES:,} bytes: keep long "
                                   "documentation out of it (link to it from `description`)"])
        text = path.read_text()
    except OSError as exc:
        raise SpecError(path, [f"(file): cannot read it ({exc.strerror}); check the path"]) from None
    except UnicodeDecodeError as exc:
        raise SpecError(path, [f"(file): not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"]) from None
    try:
        data = read_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise SpecError(path, [f"(YAML syntax) at {where}: {getattr(exc, 'problem', exc)}; fix the indentation or quoting"]) from None
    if expectations_dir is None:
        candidate = path.resolve().parent.parent / "expectations"
        expectations_dir = candidate if candidate.is_dir() else None
    if catalogue is None:
        from mlops.compute import catalogue_path, load_catalogue

        candidate = catalogue_path(path.resolve().parent.parent / "compute")
        catalogue = load_catalogue(candidate) if candidate.is_file() else None
    return parse_spec(data, path, expectations_dir, catalogue)


SPEC_SUFFIXES = (".yaml", ".yml")  # in order of precedence when both exist for one model
FILE_NAME_RULE = (f"a spec's file name is the model's name plus .yaml: lower case letters, digits and "
                  f"underscores, starting with a letter, 2 to 63 characters ({NAME_PATTERN})")


@dataclass(frozen=True)
class SpecFiles:
    """The spec files of a folder: the one file that defines each model, and the files that define none."""

    models: dict[str, Path]  # model name (the file's stem) -> its file
    rejected: dict[Path, str]  # file -> why it defines no model


def scan_spec_files(paths: list[Path]) -> SpecFiles:
    """Which file defines which model. A model's DAG ids come from the file name, so a name that would need
    mangling is refused (two such names could map to one DAG id), and when `churn.yaml` and `churn.yml` both
    exist the `.yaml` keeps the model: adding a second file never takes the first one's DAGs away."""
    models: dict[str, Path] = {}
    rejected: dict[Path, str] = {}
    ordered = sorted(paths, key=lambda p: (p.stem, SPEC_SUFFIXES.index(p.suffix) if p.suffix in SPEC_SUFFIXES
                                           else len(SPEC_SUFFIXES), str(p)))
    for path in ordered:
        if not re.fullmatch(NAME_PATTERN, path.stem) or path.suffix not in SPEC_SUFFIXES:
            rejected[path] = f"{path}: the file name '{path.name}' is not a model name; {FILE_NAME_RULE}. Rename the file"
        elif path.stem in models:
            rejected[path] = (f"{path}: model '{path.stem}' is already defined by {models[path.stem].name}; one spec "
                              f"file per model: delete {path.name} or rename it (and its `name`) to a new model")
        else:
            models[path.stem] = path
    return SpecFiles(models, rejected)


def _candidate_files(models_dir: Path) -> list[Path]:
    return [p for p in Path(models_dir).iterdir()
            if p.suffix in SPEC_SUFFIXES and not p.name.startswith(("_", ".")) and p.is_file()]


def scan_models_dir(models_dir: Path) -> SpecFiles:
    return scan_spec_files(_candidate_files(models_dir))


def spec_paths(models_dir: Path) -> list[Path]:
    """The file of each model in the folder, by model name (files that define no model left out)."""
    return [path for _, path in sorted(scan_models_dir(models_dir).models.items())]


def json_schema() -> dict:
    schema = ModelSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Model spec"
    return schema


def _main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mlops.spec", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="check spec files; exit 1 if any is invalid")
    v.add_argument("paths", nargs="+", type=Path)
    v.add_argument("--expectations", type=Path, metavar="DIR",
                   help="the folder of suite files (default: expectations/ beside the specs' folder)")
    v.add_argument("--no-import", action="store_true",
                   help="do not import the trainer modules to check trainer.function and trainer.predict")
    s = sub.add_parser("schema", help="print the JSON Schema of the spec (for editors)")
    s.add_argument("--output", type=Path)
    args = parser.parse_args(argv)

    if args.command == "schema":
        text = json.dumps(json_schema(), indent=2)
        if args.output:
            args.output.write_text(text + "\n")
        else:
            print(text)
        return 0
    if args.expectations is not None and not args.expectations.is_dir():
        parser.error(f"--expectations {args.expectations}: no such folder")
    return _validate_files(args.paths, args.expectations, resolve_references=not args.no_import)


def _validate_files(paths: list[Path], expectations: Path | None, resolve_references: bool) -> int:
    """`spec validate`: each file on its own, then the files together (one file per model)."""
    files = scan_spec_files(paths)
    failed = 0
    for path in paths:
        if path in files.rejected and path.is_file():
            failed += 1
            print(SpecError(path, [files.rejected[path].split(": ", 1)[1]]), file=sys.stderr)
            continue
        problems = _file_problems(path, expectations, resolve_references)
        if problems is None:
            failed += 1
            continue
        if problems:
            failed += 1
            print(SpecError(path, problems), file=sys.stderr)
            continue
        spec = load_spec(path, expectations or _expectations_beside(path))
        print(f"{path}: ok ({spec.name}, task {spec.dataset.task}, backend {spec.compute.backend})")
    return 1 if failed else 0


def _expectations_beside(path: Path) -> Path | None:
    candidate = path.resolve().parent.parent / "expectations"
    return candidate if candidate.is_dir() else None


def _file_problems(path: Path, expectations: Path | None, resolve_references: bool) -> list[str] | None:
    """What is wrong with one file beyond its shape, or None once its SpecError has been printed."""
    suites = expectations or _expectations_beside(path)
    try:
        spec = load_spec(path, suites)
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return None
    problems = []
    if spec.validation.suite and suites is None:
        problems.append(f"validation.suite: '{spec.validation.suite}' is named but no expectations folder was found "
                        f"(looked for {path.resolve().parent.parent / 'expectations'}); pass --expectations DIR")
    elif spec.validation.suite:
        problems += unknown_expectations(suites / f"{spec.validation.suite}.yaml")
    if resolve_references:
        from mlops.authoring import reference_problems

        problems += reference_problems(spec.trainer)
    return problems


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
