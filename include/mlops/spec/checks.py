"""Every check of a spec, in one pass: the shape of each section (pydantic), then the rules across
sections, against the platform's trainer packages, the suite file and the pool catalogue.

A rule runs when the sections it reads are valid on their own, so a spec with a shape error in one
section and a cross-field error in others shows both."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, Callable

from pydantic import TypeAdapter, ValidationError

from mlops import settings
from mlops.compute import Catalogue, pool_problems
from mlops.metrics import metrics_for
from mlops.spec.errors import shape_problems
from mlops.spec.models import ModelSpec
from mlops.spec.suite import suite_problems

PRESETS = {"@once", "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@continuous"}


@dataclass(frozen=True)
class _Context:
    path: str | Path
    expectations_dir: Path | None
    catalogue: Catalogue | None


def check(data: dict[str, Any], path: str | Path = "<spec>", expectations_dir: Path | None = None,
          catalogue: Catalogue | None = None) -> tuple[ModelSpec | None, list[str]]:
    """The spec (None when its shape is wrong) and every problem with it."""
    spec: ModelSpec | None
    shape: list[str]
    sections: ModelSpec | SimpleNamespace
    try:
        spec = ModelSpec.model_validate(data)
    except ValidationError as exc:
        shape, spec, sections = shape_problems(exc), None, valid_sections(data)
    else:
        shape, sections = [], spec
    ctx = _Context(path, expectations_dir, catalogue)
    rules = [problem for needs, rule in _RULES if all(hasattr(sections, n) for n in needs)
             for problem in rule(sections, ctx)]
    return spec, shape + rules


def valid_sections(data: dict[str, Any]) -> SimpleNamespace:
    """The top-level fields that are valid on their own (given or defaulted); the others are left out."""
    valid = SimpleNamespace()
    for name, field in ModelSpec.model_fields.items():
        if name in data:
            value = data[name]
        elif field.is_required():
            continue
        else:
            value = field.get_default(call_default_factory=True)
        try:
            setattr(valid, name, _adapter(name).validate_python(value))
        except ValidationError:
            continue
    return valid


@functools.lru_cache(maxsize=None)
def _adapter(name: str) -> TypeAdapter[Any]:
    field = ModelSpec.model_fields[name]
    annotated: Any = Annotated[field.annotation, field]  # built at runtime, so no static type form
    return TypeAdapter(annotated)


def valid_cron(expression: str) -> bool:
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


def _trainer_packages(s: Any, ctx: _Context) -> list[str]:
    packages = settings.trainer_packages()
    return [f"trainer.{field}: '{ref}' is outside the platform's trainer packages ({', '.join(packages)}); put the "
            "function in a module of one of them, or add its package to MLOPS_TRAINER_PACKAGES"
            for field, ref in (("function", s.trainer.function), ("predict", s.trainer.predict))
            if ref and not in_packages(ref, packages)]


def _pool(s: Any, ctx: _Context) -> list[str]:
    if ctx.catalogue is None:
        return []
    return pool_problems(ctx.catalogue, s.compute.pool, s.compute.gpus)


def _serving(s: Any, ctx: _Context) -> list[str]:
    serving = s.serving
    if serving is None:
        return []
    problems = []
    if serving.deployed_alias in (s.promotion.alias, s.promotion.previous_alias):
        problems.append(f"serving.deployed_alias: '{serving.deployed_alias}' is also a promotion alias; the "
                        "deployed version and the champion move separately, so give them different aliases")
    if ctx.catalogue is not None:
        problems += [p.replace("compute.", "serving.", 1)
                     for p in pool_problems(ctx.catalogue, serving.pool, serving.gpus)]
    return problems


def _tuning(s: Any, ctx: _Context) -> list[str]:
    """The search space names hyperparameters the trainer has, with values of their type inside the form's bounds."""
    tuning = s.tuning
    if tuning is None:
        return []
    trainer = s.trainer
    problems = []
    for name, p in tuning.parameters.items():
        where = f"tuning.parameters.{name}"
        if name not in trainer.hyperparameters:
            problems.append(f"{where}: not one of trainer.hyperparameters ({', '.join(trainer.hyperparameters)}); "
                            "add it there with its default, or fix the name")
            continue
        default = trainer.hyperparameters[name]
        kind = _value_kind(default)
        if p.type in ("int", "float") and kind not in (None, "int", "float"):
            problems.append(f"{where}: a {p.type} range for a hyperparameter whose default {default!r} is not a "
                            "number; use type: categorical with choices")
        elif p.type == "int" and kind == "float":
            problems.append(f"{where}: type int, but the default {default!r} is a float; use type: float")
        elif p.type == "categorical" and kind is not None and any(_value_kind(c) not in (kind, None) and not
                                                                   (kind == "float" and _value_kind(c) == "int")
                                                                   for c in p.choices or []):
            problems.append(f"{where}: choices {p.choices} are not all of the default's type ({kind}); "
                            "make them match trainer.hyperparameters")
        bounds = trainer.hyperparameter_ranges.get(name)
        if bounds is not None and p.type in ("int", "float"):
            if (bounds.min is not None and p.low is not None and p.low < bounds.min) or \
                    (bounds.max is not None and p.high is not None and p.high > bounds.max):
                problems.append(f"{where}: {p.low:g}..{p.high:g} reaches outside trainer.hyperparameter_ranges"
                                f".{name} ({bounds.min}..{bounds.max}); narrow the search or widen the range")
    if tuning.metric is not None:
        allowed = metrics_for(s.dataset.task) if hasattr(s, "dataset") else None
        if allowed is not None and tuning.metric not in allowed:
            problems.append(f"tuning.metric: '{tuning.metric}' is not a {s.dataset.task} metric; use one of {allowed}")
    if tuning.schedule is not None and tuning.schedule not in PRESETS and not valid_cron(tuning.schedule):
        problems.append(f"tuning.schedule: '{tuning.schedule}' is neither a valid cron expression nor one of "
                        f"{sorted(PRESETS)}; use e.g. '0 3 * * 0' or null for manual sweeps only")
    return problems


def _value_kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return type(value).__name__


def _target(s: Any, ctx: _Context) -> list[str]:
    ds = s.dataset
    if ds.target in ds.features:
        return [f"dataset.target: '{ds.target}' is also listed under dataset.features; remove it there"]
    return []


def _evaluation_metrics(s: Any, ctx: _Context) -> list[str]:
    task, ev = s.dataset.task, s.evaluation
    allowed = metrics_for(task)
    problems = []
    if ev.primary_metric not in allowed:
        problems.append(f"evaluation.primary_metric: '{ev.primary_metric}' is not a {task} metric; "
                        f"use one of {allowed}")
    for i, g in enumerate(ev.guardrails):
        if g.metric not in allowed:
            problems.append(f"evaluation.guardrails.{i}.metric: '{g.metric}' is not a {task} metric; "
                            f"use one of {allowed}")
    return problems


def _schedule(field_name: str, get: Callable[[Any], str | None]) -> Callable[[Any, _Context], list[str]]:
    def rule(s: Any, ctx: _Context) -> list[str]:
        schedule = get(s)
        if schedule is None or schedule in PRESETS or valid_cron(schedule):
            return []
        return [f"{field_name}: '{schedule}' is neither a valid cron expression nor one of {sorted(PRESETS)}; "
                "use e.g. '0 3 * * *' or null for manual runs only"]
    return rule


def _monitored_columns(s: Any, ctx: _Context) -> list[str]:
    features = s.dataset.features
    return [f"monitoring.columns.{column}: not a feature of dataset.features ({', '.join(features)}); fix the "
            "name or remove it" for column in s.monitoring.columns if column not in features]


def _quality_metric(s: Any, ctx: _Context) -> list[str]:
    metric, task = s.monitoring.quality.metric, s.dataset.task
    allowed = metrics_for(task)
    if metric is not None and metric not in allowed:
        return [f"monitoring.quality.metric: '{metric}' is not a {task} metric; use one of {allowed}"]
    return []


def _duplicate_key(s: Any, ctx: _Context) -> list[str]:
    problems: list[str] = s.validation.duplicates.key_problems(s.dataset.columns)
    return problems


def _aliases(s: Any, ctx: _Context) -> list[str]:
    if s.promotion.alias == s.promotion.previous_alias:
        return ["promotion.previous_alias: must differ from promotion.alias"]
    return []


def _suite(s: Any, ctx: _Context) -> list[str]:
    if not s.validation.suite or ctx.expectations_dir is None:
        return []
    suite_file = ctx.expectations_dir / f"{s.validation.suite}.yaml"
    if not suite_file.is_file():
        return [f"validation.suite: no suite file {suite_file}; create it or remove validation.suite"]
    return suite_problems(suite_file)


def _file_name(s: Any, ctx: _Context) -> list[str]:
    stem = Path(str(ctx.path)).stem
    if ctx.path != "<spec>" and stem != s.name:
        return [f"name: '{s.name}' differs from the file name '{stem}'; rename one of them"]
    return []


# (the sections a rule reads, the rule), in the order the problems are listed
_RULES: list[tuple[tuple[str, ...], Callable[[Any, _Context], list[str]]]] = [
    (("trainer",), _trainer_packages),
    (("compute",), _pool),
    (("serving", "promotion"), _serving),
    (("tuning", "trainer", "dataset"), _tuning),
    (("dataset",), _target),
    (("dataset", "evaluation"), _evaluation_metrics),
    (("schedule",), _schedule("schedule", lambda s: s.schedule)),
    (("scoring",), _schedule("scoring.schedule", lambda s: s.scoring.schedule)),
    (("monitoring",), _schedule("monitoring.schedule", lambda s: s.monitoring.schedule)),
    (("monitoring", "dataset"), _monitored_columns),
    (("monitoring", "dataset"), _quality_metric),
    (("validation", "dataset"), _duplicate_key),
    (("promotion",), _aliases),
    (("validation",), _suite),
    (("name",), _file_name),
]
