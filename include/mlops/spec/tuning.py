"""A spec's hyperparameter sweep (`tuning:`): the search space, the objective, the budget and the engine's
settings. The `<model>__tune` DAG runs it; checks against `trainer.hyperparameters` are in checks.py."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mlops.documents import Strict

Choice = str | int | float | bool | None
MAX_GRID = 10_000  # a grid this large is a random search that never ends; say so instead


class SearchParameter(Strict):
    """One hyperparameter's distribution, in Optuna's terms (suggest_int / suggest_float / suggest_categorical)."""

    type: Literal["int", "float", "categorical"]
    low: float | None = Field(None, description="Smallest value (int and float).")
    high: float | None = Field(None, description="Largest value, included (int and float).")
    log: bool = Field(False, description="Sample on a log scale (low must be above 0).")
    step: float | None = Field(None, gt=0, description="Spacing of the values (int: default 1; float: "
                               "continuous without it). The grid sampler needs it for floats.")
    choices: list[Choice] | None = Field(None, min_length=1, description="The values (categorical).")

    @model_validator(mode="after")
    def _shape(self) -> "SearchParameter":
        problems = self._categorical_problems() if self.type == "categorical" else self._numeric_problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _categorical_problems(self) -> list[str]:
        problems = [f"`{name}` does not apply to a categorical parameter; remove it"
                    for name in ("low", "high", "step") if getattr(self, name) is not None]
        if self.log:
            problems.append("`log` does not apply to a categorical parameter; remove it")
        if not self.choices:
            problems.append("a categorical parameter needs `choices`, e.g. choices: [gini, entropy]")
        elif len({repr(c) for c in self.choices}) != len(self.choices):
            problems.append(f"choices {self.choices} repeat a value; list each once")
        return problems

    def _numeric_problems(self) -> list[str]:
        problems = []
        if self.choices is not None:
            problems.append("`choices` only applies to type: categorical; remove it or change the type")
        if self.low is None or self.high is None:
            return [*problems, f"a {self.type} parameter needs `low` and `high`"]
        if self.low > self.high:
            problems.append(f"low ({self.low:g}) is larger than high ({self.high:g}); swap them")
        if self.log and self.low <= 0:
            problems.append(f"a log-scale range must start above 0 (low is {self.low:g})")
        if self.log and self.step is not None:
            problems.append("`log` and `step` cannot be combined; drop one")
        if self.type == "int":
            bad = [name for name in ("low", "high", "step") if getattr(self, name) is not None
                   and not float(getattr(self, name)).is_integer()]
            if bad:
                problems.append(f"{', '.join(bad)} of an int parameter must be whole numbers")
        return problems

    def contains(self, value: Any) -> bool:
        """Whether `value` is one this distribution can suggest (the spec's default, say)."""
        if self.type == "categorical":
            return any(value == c and type(value) is type(c) for c in self.choices or [])
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.type == "int" and not float(value).is_integer():
            return False
        low, high = float(self.low or 0), float(self.high or 0)
        if not low <= float(value) <= high:
            return False
        step = self.step or (1 if self.type == "int" else None)
        return step is None or math.isclose((float(value) - low) / step, round((float(value) - low) / step))

    def grid_values(self) -> list[Choice] | None:
        """Every value, for the grid sampler; None for a continuous float."""
        if self.type == "categorical":
            return list(self.choices or [])
        step = self.step or (1 if self.type == "int" else None)
        if step is None or self.low is None or self.high is None:
            return None
        count = int(math.floor((self.high - self.low) / step + 1e-9)) + 1
        if count > MAX_GRID:
            return None
        values = [self.low + i * step for i in range(count)]
        return [int(v) for v in values] if self.type == "int" else [round(v, 12) for v in values]

    def distribution(self) -> Any:
        """The Optuna distribution (imported here: parsing a spec never imports Optuna)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.type == "categorical":
            return CategoricalDistribution(list(self.choices or []))
        low, high = float(self.low or 0), float(self.high or 0)
        if self.type == "int":
            return IntDistribution(int(low), int(high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(low, high, log=self.log, step=self.step)

    def describe(self) -> str:
        if self.type == "categorical":
            return f"one of {self.choices}"
        scale = ", log" if self.log else ""
        step = f", step {self.step:g}" if self.step is not None else ""
        return f"{self.type} {self.low:g}..{self.high:g}{scale}{step}"


class Tuning(Strict):
    """How `<model>__tune` searches: trials run in rounds of `parallelism` (capped by the pool's slots), each
    round's results inform the next round's asks, until `trials` are done or the time budget is spent. The best
    parameters are then retrained on the full window and go through evaluation and promotion."""

    parameters: dict[str, SearchParameter] = Field(
        description="The search space: hyperparameters of trainer.hyperparameters with their distributions.")
    metric: str | None = Field(
        None, description="The objective, measured on a validation split carved from the training part (never "
        "the promotion holdout); default: evaluation.primary_metric, in its direction.")
    validation_fraction: float = Field(
        0.2, gt=0, lt=0.6, description="Share of the training part held back to score trials (cut the way the "
        "holdout is: the last days for a time holdout, a seeded sample for a random one).")
    trials: int = Field(20, ge=1, description="Trials per sweep (the trigger form's default).")
    max_trials: int = Field(100, ge=1, le=1000, description="The most trials a trigger may ask for.")
    parallelism: int = Field(2, ge=1, description="Trials that run at once (the form's default); the compute "
                             "pool's Airflow slots cap it too.")
    max_parallelism: int = Field(8, ge=1, le=64, description="The most trials a trigger may run at once.")
    rounds: int = Field(10, ge=1, le=50, description="Ask/tell rounds the tune DAG has; trials / parallelism "
                        "must fit in them. Spare rounds re-ask trials that failed.")
    time_budget_minutes: int = Field(120, ge=1, description="No new round starts after this (the form's default).")
    max_time_budget_minutes: int = Field(1440, ge=1, le=43200, description="The most a trigger may give.")
    sampler: Literal["tpe", "random", "grid"] = Field("tpe", description="How the next parameters are chosen.")
    pruner: Literal["median", "none"] = Field(
        "median", description="Stop a trial early whose reported value is worse than the median of finished trials "
        "at the same step (trainers that call mlops.authoring.report); none runs every trial to the end.")
    startup_trials: int = Field(5, ge=0, le=1000, description="Finished trials before the pruner and TPE act.")
    warmup_steps: int = Field(0, ge=0, description="Steps of a trial the pruner never stops it in.")
    seed: int | None = Field(None, description="The sampler's seed; default trainer.seed.")
    include_defaults: bool = Field(
        True, description="Run trainer.hyperparameters as the first trial (when they lie in the space), so the "
        "sweep's best is never worse than what the model trains with today.")
    schedule: str | None = Field(None, description="When the sweep runs on its own (cron or preset); default: "
                                 "only when triggered.")

    @field_validator("parameters")
    @classmethod
    def _some(cls, parameters: dict[str, SearchParameter]) -> dict[str, SearchParameter]:
        if not parameters:
            raise ValueError("declare at least one parameter to search, e.g. alpha: {type: float, low: 0.001, "
                             "high: 10, log: true}")
        return parameters

    @model_validator(mode="after")
    def _budget(self) -> "Tuning":
        problems = []
        for value, limit, field in ((self.trials, self.max_trials, "trials"),
                                    (self.parallelism, self.max_parallelism, "parallelism"),
                                    (self.time_budget_minutes, self.max_time_budget_minutes, "time_budget_minutes")):
            if value > limit:
                problems.append(f"{field} ({value}) is above max_{field} ({limit}); raise the limit or lower the "
                                "default")
        needed = rounds_needed(self.trials, self.parallelism)
        if needed > self.rounds:
            problems.append(f"{self.trials} trials at {self.parallelism} at once take {needed} rounds but rounds is "
                            f"{self.rounds}; raise rounds or parallelism")
        if self.sampler == "grid":
            problems += [f"parameters.{name}: the grid sampler needs discrete values; give this float a `step` or "
                         f"use sampler: tpe" for name, p in self.parameters.items() if p.grid_values() is None]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def grid(self) -> dict[str, list[Choice]]:
        return {name: p.grid_values() or [] for name, p in self.parameters.items()}


def rounds_needed(trials: int, parallelism: int) -> int:
    return math.ceil(trials / max(parallelism, 1))
