"""Data validation with Great Expectations (GX Core 1.x), declared as data.

Two batches are checked for each training window:
- `partitions`: one row per expected daily partition (present? rows? columns as the spec says?);
- `rows`: every row of the window (nulls, ranges, types, allowed values, duplicate rows, and the suite
  file's extras).
Expectations derived from the spec's typed columns come first; `include/expectations/<suite>.yaml`
adds model-specific ones. Each carries a severity: `blocking` stops the run, `warning` is reported.

A row-level failure names the days its rows come from, with each day's rate. A failure that follows
from another (a column missing from a partition is also seen as nulls; text in a float column cannot
be range-checked) is folded under its cause: reported once, blocking if any of them blocks.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from mlops.data import WindowData
from mlops.spec import ModelSpec

if TYPE_CHECKING:
    from datetime import datetime

    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult
    from great_expectations.expectations import Expectation
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    from mlops.settings import Settings

# GX names pandas' nullable dtypes by their class ("Int64Dtype"); "Int64" matches nothing there.
_TYPE_LISTS = {
    "int": ["int64", "int32", "int16", "int8", "Int64Dtype", "Int32Dtype", "Int16Dtype", "Int8Dtype", "int"],
    "float": ["float64", "float32", "Float64Dtype", "Float32Dtype", "float", "int64", "int32", "Int64Dtype",
              "Int32Dtype", "int"],
    "bool": ["bool", "BooleanDtype"],
}
# How a row that fails each expectation reads in a per-day count ("160 of 400 rows (40.0%) null").
_ROW_WORDS = {
    "expect_column_values_to_not_be_null": "null",
    "expect_column_values_to_be_between": "out of range",
    "expect_column_values_to_be_in_set": "not in the allowed values",
    "expect_column_values_to_be_in_type_list": "of another type",
    "expect_compound_columns_to_be_unique": "duplicated",
    "expect_column_values_to_be_unique": "duplicated",
}
_NO_SAMPLE = {"expect_column_values_to_not_be_null", "expect_compound_columns_to_be_unique"}
_TYPE_CHECK = "expect_column_values_to_be_in_type_list"
_VALUE_CHECKS = {"expect_column_values_to_be_between", "expect_column_values_to_be_in_set"}
_DAYS_SHOWN = 5  # a failure on more days shows its totals and the worst days
# Every unexpected row's position, without the values: what counting failed rows per day needs.
_ROW_POSITIONS = {"result_format": "COMPLETE", "exclude_unexpected_values": True,
                  "return_unexpected_index_query": False}


@dataclass(frozen=True)
class Check:
    batch: str  # "rows" or "partitions"
    type: str  # GX expectation type, snake case
    kwargs: dict[str, Any]
    severity: str
    description: str


@dataclass
class DayCount:
    day: str
    unexpected: int
    rows: int
    percent: float


@dataclass
class Failure:
    check: str
    column: str | None
    severity: str
    description: str
    observed: str
    batch: str = "rows"
    days: list[DayCount] = field(default_factory=list)  # row-level failures: the days their rows come from
    folded: list[Failure] = field(default_factory=list)  # failures that follow from this one

    @property
    def blocks(self) -> bool:
        """A consequence that blocks still blocks when it is folded under a warning."""
        return self.severity == "blocking" or any(f.blocks for f in self.folded)

    @property
    def kind(self) -> str:
        """The short name a description ends with: "'x' has no nulls (nulls)" -> "nulls"."""
        m = re.search(r"\(([^()]+)\)$", self.description)
        return m.group(1) if m else self.check

    @property
    def day_set(self) -> set[str]:
        return {d.day for d in self.days}


@dataclass
class ValidationReport:
    model: str
    success: bool  # no blocking failure
    evaluated: int
    failures: list[Failure] = field(default_factory=list)  # each cause once, its consequences folded in
    result_path: str | None = None
    docs_path: str | None = None
    docs_pages: list[str] = field(default_factory=list)  # this validation's pages in the Data Docs site

    @property
    def blocking(self) -> list[Failure]:
        return [f for f in self.failures if f.blocks]

    @property
    def warnings(self) -> list[Failure]:
        return [f for f in self.failures if not f.blocks]

    def message(self) -> str:
        folded = sum(len(f.folded) for f in self.blocking)
        head = (
            f"{self.model}: data validation failed: {len(self.blocking)} blocking expectation(s) of "
            f"{self.evaluated} failed" + (f" ({folded} more follow from them, folded in)" if folded else "")
        )
        lines = [f"  - {f.description} [{f.check}" + (f" on '{f.column}'" if f.column else "") + f"]: {f.observed}"
                 for f in self.blocking]
        tail = f"\nFull result: {self.result_path}" + (f"\nData Docs: {self.docs_path}" if self.docs_path else "")
        return head + ":\n" + "\n".join(lines) + tail

    def summary(self) -> dict[str, Any]:
        """Small enough for XCom."""
        return {
            "model": self.model,
            "success": self.success,
            "evaluated": self.evaluated,
            "blocking_failures": [f"{f.check}:{f.column or '-'}" for f in self.blocking],
            "warnings": [f"{f.check}:{f.column or '-'}" for f in self.warnings],
            "result_path": self.result_path,
            "docs_path": self.docs_path,
            "docs_pages": self.docs_pages,
        }


def derived_checks(spec: ModelSpec) -> list[Check]:
    """What the spec's column declarations already promise."""
    sev = spec.validation.severity
    ds = spec.dataset
    window = ds.window
    checks = [
        Check("partitions", "expect_column_values_to_be_in_set", {"column": "exists", "value_set": [True]}, sev,
              "every day of the training window has a partition (missing partition)"),
        Check("partitions", "expect_column_values_to_be_between",
              {"column": "rows", "min_value": max(1, window.min_rows_per_partition)}, sev,
              f"no partition is empty or has fewer than {max(1, window.min_rows_per_partition)} rows "
              "(empty partition)"),
        Check("partitions", "expect_column_values_to_be_in_set", {"column": "missing_columns", "value_set": [""]}, sev,
              "no column of the spec is missing from a partition (dropped or renamed column)"),
        Check("partitions", "expect_column_values_to_be_in_set", {"column": "unexpected_columns", "value_set": [""]},
              sev, "no partition has columns the spec does not declare (renamed or new column)"),
    ]
    for name, feature in ds.features.items():
        checks.extend(_column_checks(name, feature.type, feature.min, feature.max, feature.values,
                                     feature.nullable, sev))
    checks.extend(_column_checks(ds.target, _target_type(spec), None, None, None, False, sev))
    if ds.task == "binary_classification":
        checks.append(Check("rows", "expect_column_values_to_be_in_set", {"column": ds.target, "value_set": [0, 1]},
                            sev, f"the label '{ds.target}' is 0 or 1 (out-of-range label)"))
    checks.append(_duplicates_check(spec))
    return checks


def _duplicates_check(spec: ModelSpec) -> Check:
    dup = spec.validation.duplicates
    key = dup.key_columns(spec.dataset.columns)
    on = "" if dup.key is None else f" on ({', '.join(key)})"
    allowed = "no row repeats" if dup.max_fraction == 0 else f"at most {dup.max_fraction:.1%} of rows repeat"
    # GX counts every row of a repeated key, the first one included: max_fraction is read the same way.
    mostly = round(1 - dup.max_fraction, 12)
    kind, kwargs = (("expect_compound_columns_to_be_unique", {"column_list": key}) if len(key) > 1 else
                    ("expect_column_values_to_be_unique", {"column": key[0]}))  # GX's compound one needs two
    return Check("rows", kind, {**kwargs, "mostly": mostly}, dup.severity,
                 f"{allowed} another row{on} (duplicate rows)")


def _target_type(spec: ModelSpec) -> str:
    return "int" if spec.dataset.task == "binary_classification" else "float"


def _column_checks(name: str, type_: str, lo: float | None, hi: float | None, values: list[str] | None,
                   nullable: bool, sev: str) -> list[Check]:
    checks = []
    if type_ != "category":  # categories are checked against their declared values instead
        checks.append(Check("rows", "expect_column_values_to_be_in_type_list",
                            {"column": name, "type_list": _TYPE_LISTS[type_]}, sev,
                            f"'{name}' holds {type_} values (wrong type)"))
    if not nullable:
        checks.append(Check("rows", "expect_column_values_to_not_be_null", {"column": name}, sev,
                            f"'{name}' has no nulls (nulls)"))
    if lo is not None or hi is not None:
        checks.append(Check("rows", "expect_column_values_to_be_between",
                            {"column": name, "min_value": lo, "max_value": hi}, sev,
                            f"'{name}' lies within [{lo}, {hi}] (out-of-range values)"))
    if values:
        checks.append(Check("rows", "expect_column_values_to_be_in_set", {"column": name, "value_set": values}, sev,
                            f"'{name}' takes only the declared values (unknown category)"))
    return checks


def suite_checks(suite_file: Path) -> list[Check]:
    from mlops.spec import load_suite

    return [Check(item.batch, item.type, dict(item.kwargs), item.severity, item.description or item.type)
            for item in load_suite(suite_file)]


def _gx_class(snake: str) -> type[Expectation]:
    import great_expectations as gx

    camel = "".join(part.capitalize() for part in snake.split("_"))
    cls: type[Expectation] | None = getattr(gx.expectations, camel, None)
    if cls is None:
        raise ValueError(f"unknown GX expectation '{snake}'; see great_expectations.expectations for the names")
    return cls


def _observed(result: dict[str, Any]) -> str:
    if "observed_value" in result and result["observed_value"] is not None:
        text = f"observed {result['observed_value']}"
    elif result.get("unexpected_count") is not None:
        sample = result.get("partial_unexpected_list") or []
        text = (f"{result['unexpected_count']} unexpected value(s) "
                f"({result.get('unexpected_percent', 0):.1f}%), e.g. {sample[:5]}")
    elif not result:
        text = "could not be evaluated on these values (wrong type?)"
    else:
        text = json.dumps(result, default=str)[:300]
    details = result.get("details") or {}
    if details.get("mismatched"):
        text += f", mismatch {details['mismatched']}"
    return text


def _rows_per_day(data: WindowData) -> dict[str, int]:
    p = data.profile
    # itertuples() fields are typed as any scalar: the profile's day is text, rows a (float) count.
    return {cast(str, r.day): int(cast(float, r.rows)) for r in p[p["rows"].fillna(0) > 0].itertuples()}


def _day_counts(index: list[Any], data: WindowData) -> list[DayCount]:
    """The days the unexpected rows come from: GX gives row positions in the window, people want days."""
    positions = np.asarray(index)
    if not len(positions) or positions.dtype.kind not in "iu":  # positions, not labels of an index column
        return []
    days, counts = np.unique(data.row_day[positions], return_counts=True)
    rows = _rows_per_day(data)
    return [DayCount(str(d), int(n), rows[str(d)], round(100 * int(n) / rows[str(d)], 1))
            for d, n in zip(days, counts, strict=True)]


def _per_day_text(check: str, days: list[DayCount], data: WindowData, sample: list[Any]) -> str:
    """"2026-01-12: 160 of 400 rows (40.0%) null; other days 0"; on many days, the totals and the worst days."""
    word = _ROW_WORDS.get(check, "unexpected")
    present = _rows_per_day(data)

    def one(c: DayCount, what: str = word) -> str:
        return f"{c.day}: {c.unexpected} of {c.rows} rows ({c.percent:.1f}%) {what}".rstrip()

    if len(days) > _DAYS_SHOWN:
        total, rows = sum(c.unexpected for c in days), sum(present.values())
        worst = sorted(days, key=lambda c: (-c.percent, c.day))[:_DAYS_SHOWN]
        text = (f"{total} of {rows} rows ({100 * total / rows:.1f}%) {word}, on {len(days)} of {len(present)} "
                "days; worst: " + "; ".join(one(c, "") for c in worst))
    else:
        text = "; ".join(one(c) for c in days) + ("; other days 0" if len(days) < len(present) else "")
    if sample and check not in _NO_SAMPLE:
        text += f"; e.g. {sample[:5]}"
    return text


def _days_text(days: list[str]) -> str:
    """Consecutive days as one range: "2026-01-05..2026-01-09, 2026-01-12"."""
    dates = sorted(np.datetime64(d, "D") for d in days)
    runs: list[list[np.datetime64]] = []
    for d in dates:
        if runs and d - runs[-1][-1] == np.timedelta64(1, "D"):
            runs[-1].append(d)
        else:
            runs.append([d])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}..{r[-1]}" for r in runs)


def _missing_days(profile: pd.DataFrame) -> dict[str, list[str]]:
    """Each declared column missing from some partition, with those partitions' days."""
    out: dict[str, list[str]] = {}
    for r in profile[profile["missing_columns"] != ""].itertuples():
        for column in cast(str, r.missing_columns).split(","):
            out.setdefault(column, []).append(cast(str, r.day))
    return out


def _partition_explanations(data: WindowData, minimum_rows: int) -> dict[str, str]:
    """Which days failed each partition check: GX reports values, people want days."""
    p = data.profile
    out = {}
    if (~p["exists"]).any():
        out["exists"] = "missing days " + ", ".join(p.loc[~p["exists"], "day"])
    small = p[p["exists"] & (p["rows"].fillna(0) < max(1, minimum_rows))]
    if len(small):
        out["rows"] = "; ".join(f"{r.day}: {int(cast(float, r.rows))} rows" for r in small.itertuples())
    missing = _missing_days(p)
    if missing:
        out["missing_columns"] = "; ".join(f"'{c}' missing in {_days_text(days)}" for c, days in missing.items())
    bad = p[p["unexpected_columns"] != ""]
    if len(bad):
        out["unexpected_columns"] = "; ".join(f"{r.day}: {r.unexpected_columns}" for r in bad.itertuples())
    return out


def _as_declared_types(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """pandas keeps an int column with a null as float64 and a bool one as object: give GX the nullable
    dtype instead, so the nulls are reported once, by the null check, not also as a wrong type."""
    declared: dict[str, str] = {name: f.type for name, f in spec.dataset.features.items()}
    declared[spec.dataset.target] = _target_type(spec)
    changed: dict[str, pd.Series[Any]] = {}
    for name, type_ in declared.items():
        if name not in frame.columns or not frame[name].hasnans:
            continue
        column, values = frame[name], frame[name].dropna()
        if (type_ == "int" and pd.api.types.is_float_dtype(column)
                and ((values % 1 == 0) & (values.abs() < 2**53)).all()):
            changed[name] = column.astype("Int64")
        elif type_ == "bool" and column.dtype == object and values.map(lambda v: isinstance(v, (bool, np.bool_))).all():
            changed[name] = column.astype("boolean")
    return frame.assign(**changed) if changed else frame


def _cause(f: Failure, gap: Failure | None, missing: dict[str, list[str]],
           wrong_type: dict[str | None, Failure]) -> Failure | None:
    """The failure this one follows from, if any; only rows failures follow from others."""
    if f.batch != "rows" or f.column is None:
        return None
    if gap is not None and f.column in missing and f.days and f.day_set <= set(missing[f.column]):
        return gap  # the rows of a partition without the column are nulls in the window
    typed = wrong_type.get(f.column)
    if typed is not None and typed is not f and f.check in _VALUE_CHECKS:
        # Values of the wrong type cannot be compared with a range or a set: the range check says so too.
        if not f.days or f.day_set <= typed.day_set:
            return typed
    return None


def _fold(failures: list[Failure], data: WindowData) -> list[Failure]:
    """Fold every failure that follows from another under its root cause; the causes are returned."""
    missing = _missing_days(data.profile)
    gap = next((f for f in failures if f.batch == "partitions" and f.column == "missing_columns"), None)
    wrong_type = {f.column: f for f in failures if f.check == _TYPE_CHECK and f.batch == "rows" and f.days}
    cause_of = {id(f): _cause(f, gap, missing, wrong_type) for f in failures}
    roots: list[Failure] = []
    for f in failures:
        root = cause_of[id(f)]
        while root is not None and cause_of[id(root)] is not None:
            root = cause_of[id(root)]
        (root.folded if root is not None else roots).append(f)
    for root in roots:
        if root.folded:
            root.observed = _with_consequences(root, missing)
    return sorted(roots, key=lambda f: f.batch != "partitions")  # a partition's problem is read first


def _with_consequences(cause: Failure, missing: dict[str, list[str]]) -> str:
    """"'tenure' missing in 2026-01-12 (also seen as its nulls)"."""
    def kinds(column: str | None) -> str:
        return "/".join(dict.fromkeys(f.kind for f in cause.folded if f.column == column))

    if cause.batch == "partitions" and cause.column == "missing_columns":
        return "; ".join(f"'{c}' missing in {_days_text(days)}"
                         + (f" (also seen as its {kinds(c)})" if kinds(c) else "") for c, days in missing.items())
    return f"{cause.observed} (also seen as its {kinds(cause.column)})"


def _config_of(r: ExpectationValidationResult) -> ExpectationConfiguration:
    """The expectation a result is about; GX sets it on every result of a suite it ran."""
    if r.expectation_config is None:
        raise RuntimeError("a GX validation result came without its expectation configuration")
    return r.expectation_config


def _unexpected_positions(definition: BatchDefinition[Any], frame: pd.DataFrame,
                          expectations: list[Expectation]) -> dict[int, list[Any]]:
    """Every unexpected row of these failed row-level expectations, by their meta index.

    The checkpoint's result keeps 20 of them (its Data Docs stay small); asking for all of them there
    would carry every value through GX's stores and pages. This second pass asks for positions only.
    """
    import great_expectations as gx

    if not expectations:
        return {}
    suite = gx.ExpectationSuite(name="unexpected_rows", expectations=expectations)
    result = definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite, result_format=_ROW_POSITIONS)
    return {_config_of(r).meta["index"]: (r.result or {}).get("unexpected_index_list") or []
            for r in result.results}


def _skipped(kwargs: dict[str, Any], frame: pd.DataFrame) -> bool:
    """A column missing from every partition is reported by the partition checks; GX would only raise here."""
    columns = [kwargs["column"]] if "column" in kwargs else list(kwargs.get("column_list") or [])
    return any(c not in frame.columns for c in columns)


def validate_window(spec: ModelSpec, data: WindowData, reports_dir: Path, label: str,
                    suite_dir: Path | None = None) -> ValidationReport:
    """Run the model's suite on the window; write the full result and Data Docs under reports_dir."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    checks = derived_checks(spec)
    if spec.validation.suite and suite_dir is not None:
        checks += suite_checks(suite_dir / f"{spec.validation.suite}.yaml")

    out_dir = Path(reports_dir) / spec.name / label
    out_dir.mkdir(parents=True, exist_ok=True)
    docs_dir = Path(reports_dir) / spec.name / "data_docs"

    import time

    started = time.time()
    # GX logs each context's fluent datasource config at INFO ("Loading 'datasources' ->" and "[]"): noise
    # in every task log that no user can act on. Its warnings and errors still come through.
    logging.getLogger("great_expectations.datasource.fluent.config").setLevel(logging.WARNING)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    ctx.add_data_docs_site(
        site_name="mlops",
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    source = ctx.data_sources.add_pandas(f"{spec.name}")
    frames = {"rows": _as_declared_types(data.frame, spec), "partitions": data.profile.drop(columns=["uri"])}
    failures: list[Failure] = []
    evaluated = 0
    raw_results: dict[str, Any] = {}
    explanations = _partition_explanations(data, spec.dataset.window.min_rows_per_partition)
    for batch, frame in frames.items():
        batch_checks = [c for c in checks if c.batch == batch]
        if not batch_checks:
            continue
        asset = source.add_dataframe_asset(name=batch)
        definition = asset.add_batch_definition_whole_dataframe(batch)
        suite = ctx.suites.add(gx.ExpectationSuite(name=f"{spec.name}.{batch}"))
        for i, c in enumerate(batch_checks):
            kwargs = c.kwargs
            if _skipped(kwargs, frame):
                continue
            suite.add_expectation(_gx_class(c.type)(**kwargs, meta={"index": i, "severity": c.severity,
                                                                      "description": c.description}))
        vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=f"{spec.name}.{batch}", data=definition,
                                                                    suite=suite))
        checkpoint = ctx.checkpoints.add(gx.Checkpoint(
            name=f"{spec.name}.{batch}", validation_definitions=[vd],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=["mlops"])],
            result_format="SUMMARY",
        ))
        result = next(iter(checkpoint.run(batch_parameters={"dataframe": frame}).run_results.values()))
        raw_results[batch] = result.to_json_dict()  # type: ignore[no-untyped-call]  # GX leaves it unannotated
        failed_rows = [] if batch != "rows" else [
            copy.copy(_config_of(r).to_domain_obj()) for r in result.results
            if not r.success and "partial_unexpected_index_list" in (r.result or {})]
        positions = _unexpected_positions(definition, frame, failed_rows)
        for r in result.results:
            evaluated += 1
            if r.success:
                continue
            config = _config_of(r)
            meta = config.meta or {}
            column = config.kwargs.get("column")
            check = config.type
            outcome = r.result or {}
            meta_index: int | None = meta.get("index")
            days = _day_counts(positions.get(meta_index, []) if meta_index is not None else [], data)
            observed = (_per_day_text(check, days, data, outcome.get("partial_unexpected_list") or [])
                        if days else _observed(outcome))
            if r.exception_info and r.exception_info.get("raised_exception"):
                observed = f"could not evaluate: {r.exception_info.get('exception_message')}"
            if batch == "partitions" and column in explanations:
                observed = explanations[column]
            failures.append(Failure(check, column, meta.get("severity", "blocking"), meta.get("description", check),
                                    observed, batch, days))

    causes = _fold(failures, data)
    report = ValidationReport(spec.name, success=not any(f.blocks for f in causes), evaluated=evaluated,
                              failures=causes)
    result_file = out_dir / "validation.json"
    result_file.write_text(json.dumps({"summary": report.summary(), "failures": [asdict(f) for f in causes],
                                       "gx_results": raw_results}, indent=1, default=str))
    report.result_path = str(result_file)
    index = docs_dir / "index.html"
    report.docs_path = str(index) if index.exists() else None
    report.docs_pages = sorted(str(p) for p in (docs_dir / "validations").rglob("*.html")
                               if p.stat().st_mtime >= started - 1)
    return report


class ValidationFailed(RuntimeError):
    """Blocking expectations failed; the message lists them with their observed values."""

    def __init__(self, report: ValidationReport):
        self.report = report
        self.window: dict[str, Any] = {}  # the window it was about (check_training_window fills it in)
        super().__init__(report.message())


class NewestPartitionMissing(ValidationFailed):
    """Everything else passed; only the window's last day has not landed yet. Worth waiting for."""


def check_training_window(spec: ModelSpec, settings: Settings, data_interval_end: datetime | None,
                          label: str) -> dict[str, Any]:
    """The validate_data step: resolve and load the window, run the suite, raise on blocking failures.

    Returns what the next steps need (window, fingerprint, report summary) as small JSON.
    """
    from mlops import data

    window = data.resolve_window(spec, settings.data_root, data_interval_end)
    loaded = data.load_window(spec, settings.data_root, window)
    report = validate_window(spec, loaded, settings.reports_dir, label, settings.expectations_dir)
    where = {"window_first_day": window.first_day.isoformat(), "window_last_day": window.last_day.isoformat(),
             "window_anchor": window.anchored_by,
             # per partition, for lineage: which days were read and how many rows each had
             "partition_rows": {str(day): int(rows) if exists else None
                                for day, rows, exists in zip(loaded.profile["day"], loaded.profile["rows"],
                                                             loaded.profile["exists"], strict=True)}}
    if not report.success:
        missing = loaded.profile.loc[~loaded.profile["exists"], "day"].tolist()
        only_late = (missing == [window.last_day.isoformat()]
                     and all(f.column == "exists" for f in report.blocking))
        failed = (NewestPartitionMissing if only_late else ValidationFailed)(report)
        failed.window = where
        raise failed
    present = [c for c in spec.dataset.columns if c in loaded.frame.columns]
    return {
        **report.summary(),
        **where,
        "rows": int(len(loaded.frame)),
        "fingerprint": data.fingerprint(loaded.frame[present]),
    }
