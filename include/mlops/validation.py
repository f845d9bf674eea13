"""Data validation with Great Expectations (GX Core 1.x), declared as data.

Two batches are checked for each training window:
- `partitions`: one row per expected daily partition (present? rows? columns as the spec says?);
- `rows`: every row of the window (nulls, ranges, types, allowed values, and the suite file's extras).
Expectations derived from the spec's typed columns come first; `include/expectations/<suite>.yaml`
adds model-specific ones. Each carries a severity: `blocking` stops the run, `warning` is reported.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


from mlops.data import WindowData
from mlops.spec import ModelSpec

_TYPE_LISTS = {
    "int": ["int64", "int32", "int16", "int8", "Int64", "Int32", "int"],
    "float": ["float64", "float32", "Float64", "float", "int64", "int32", "Int64", "int"],
    "bool": ["bool", "boolean"],
}


@dataclass(frozen=True)
class Check:
    batch: str  # "rows" or "partitions"
    type: str  # GX expectation type, snake case
    kwargs: dict[str, Any]
    severity: str
    description: str


@dataclass
class Failure:
    check: str
    column: str | None
    severity: str
    description: str
    observed: str


@dataclass
class ValidationReport:
    model: str
    success: bool  # no blocking failure
    evaluated: int
    failures: list[Failure] = field(default_factory=list)
    result_path: str | None = None
    docs_path: str | None = None
    docs_pages: list[str] = field(default_factory=list)  # this validation's pages in the Data Docs site

    @property
    def blocking(self) -> list[Failure]:
        return [f for f in self.failures if f.severity == "blocking"]

    @property
    def warnings(self) -> list[Failure]:
        return [f for f in self.failures if f.severity != "blocking"]

    def message(self) -> str:
        head = (
            f"{self.model}: data validation failed: {len(self.blocking)} blocking expectation(s) of "
            f"{self.evaluated} failed"
        )
        lines = [f"  - {f.description} [{f.check}" + (f" on '{f.column}'" if f.column else "") + f"]: {f.observed}"
                 for f in self.blocking]
        tail = f"\nFull result: {self.result_path}" + (f"\nData Docs: {self.docs_path}" if self.docs_path else "")
        return head + ":\n" + "\n".join(lines) + tail

    def summary(self) -> dict:
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
              f"no partition is empty or has fewer than {max(1, window.min_rows_per_partition)} rows (empty partition)"),
        Check("partitions", "expect_column_values_to_be_in_set", {"column": "missing_columns", "value_set": [""]}, sev,
              "no column of the spec is missing from a partition (dropped or renamed column)"),
        Check("partitions", "expect_column_values_to_be_in_set", {"column": "unexpected_columns", "value_set": [""]},
              sev, "no partition has columns the spec does not declare (renamed or new column)"),
    ]
    for name, feature in ds.features.items():
        checks.extend(_column_checks(name, feature.type, feature.min, feature.max, feature.values, feature.nullable, sev))
    target_type = "int" if ds.task == "binary_classification" else "float"
    checks.extend(_column_checks(ds.target, target_type, None, None, None, False, sev))
    if ds.task == "binary_classification":
        checks.append(Check("rows", "expect_column_values_to_be_in_set", {"column": ds.target, "value_set": [0, 1]},
                            sev, f"the label '{ds.target}' is 0 or 1 (out-of-range label)"))
    return checks


def _column_checks(name, type_, lo, hi, values, nullable, sev) -> list[Check]:
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


def _gx_class(snake: str):
    import great_expectations as gx

    camel = "".join(part.capitalize() for part in snake.split("_"))
    cls = getattr(gx.expectations, camel, None)
    if cls is None:
        raise ValueError(f"unknown GX expectation '{snake}'; see great_expectations.expectations for the names")
    return cls


def _observed(result: dict) -> str:
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


def _partition_explanations(data: WindowData, minimum_rows: int) -> dict[str, str]:
    """Which days failed each partition check: GX reports values, people want days."""
    p = data.profile
    out = {}
    if (~p["exists"]).any():
        out["exists"] = "missing days " + ", ".join(p.loc[~p["exists"], "day"])
    small = p[p["exists"] & (p["rows"].fillna(0) < max(1, minimum_rows))]
    if len(small):
        out["rows"] = "; ".join(f"{r.day}: {int(r.rows)} rows" for r in small.itertuples())
    for col in ("missing_columns", "unexpected_columns"):
        bad = p[p[col] != ""]
        if len(bad):
            out[col] = "; ".join(f"{r.day}: {getattr(r, col)}" for r in bad.itertuples())
    return out


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
    frames = {"rows": data.frame, "partitions": data.profile.drop(columns=["uri"])}
    failures: list[Failure] = []
    evaluated = 0
    raw_results = {}
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
            if "column" in kwargs and kwargs["column"] not in frame.columns:
                # A missing column is reported by the partition checks; GX would only raise here.
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
        raw_results[batch] = result.to_json_dict()
        for r in result.results:
            evaluated += 1
            if r.success:
                continue
            meta = r.expectation_config.meta or {}
            column = r.expectation_config.kwargs.get("column")
            observed = _observed(r.result or {})
            if r.exception_info and r.exception_info.get("raised_exception"):
                observed = f"could not evaluate: {r.exception_info.get('exception_message')}"
            if batch == "partitions" and column in explanations:
                observed = explanations[column]
            failures.append(Failure(r.expectation_config.type, column, meta.get("severity", "blocking"),
                                    meta.get("description", r.expectation_config.type), observed))

    report = ValidationReport(spec.name, success=not any(f.severity == "blocking" for f in failures),
                              evaluated=evaluated, failures=failures)
    result_file = out_dir / "validation.json"
    result_file.write_text(json.dumps({"summary": report.summary(), "failures": [asdict(f) for f in failures],
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
        super().__init__(report.message())


class NewestPartitionMissing(ValidationFailed):
    """Everything else passed; only the window's last day has not landed yet. Worth waiting for."""


def check_training_window(spec: ModelSpec, settings, data_interval_end, label: str) -> dict:
    """The validate_data step: resolve and load the window, run the suite, raise on blocking failures.

    Returns what the next steps need (window, fingerprint, report summary) as small JSON.
    """
    from mlops import data

    window = data.resolve_window(spec, settings.data_root, data_interval_end)
    loaded = data.load_window(spec, settings.data_root, window)
    report = validate_window(spec, loaded, settings.reports_dir, label, settings.expectations_dir)
    if not report.success:
        missing = loaded.profile.loc[~loaded.profile["exists"], "day"].tolist()
        only_late = (missing == [window.last_day.isoformat()]
                     and all(f.column == "exists" for f in report.blocking))
        raise (NewestPartitionMissing if only_late else ValidationFailed)(report)
    present = [c for c in spec.dataset.columns if c in loaded.frame.columns]
    return {
        **report.summary(),
        "window_first_day": window.first_day.isoformat(),
        "window_last_day": window.last_day.isoformat(),
        "window_anchor": window.anchored_by,
        "rows": int(len(loaded.frame)),
        "fingerprint": data.fingerprint(loaded.frame[present]),
    }
