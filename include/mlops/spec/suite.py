"""The schema of a GX suite file, include/expectations/<suite>.yaml: expectations declared as data.
Checked with the spec that names it (shape only, no GX import); the command line also asks GX whether
each expectation exists."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError

from mlops.documents import Strict, read_yaml
from mlops.spec.errors import SpecError, shape_problems


class SuiteItem(Strict):
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
            problems += shape_problems(exc, prefix=f"expectations.{i}.")
    if problems:
        raise SpecError(suite_file, problems)
    return parsed


def suite_problems(suite_file: Path) -> list[str]:
    """What is wrong with the suite file a spec names, as problems of that spec's validation.suite."""
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
