"""SpecError, and pydantic's validation errors said as problems a spec's author can act on:
`<field>: <what is wrong> -> fix: <what to do>`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from mlops.problems import ProblemsError


class SpecError(ProblemsError):
    """Every problem of one spec file, each with the field and the fix."""

    def __init__(self, path: str | Path, problems: list[str]):
        self.path = str(path)
        super().__init__(f"{self.path}: {len(problems)} problem(s) in the model spec", problems)


def shape_problems(exc: ValidationError, prefix: str = "") -> list[str]:
    """One problem per pydantic error; `prefix` places the errors of a part inside its document."""
    return [f"{prefix}{_loc(e['loc'])}: {e['msg']} -> fix: {_fix_for(e)}" for e in exc.errors()]


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _fix_for(err: ErrorDetails) -> str:
    kind = err["type"]
    ctx: dict[str, Any] = err.get("ctx") or {}
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

