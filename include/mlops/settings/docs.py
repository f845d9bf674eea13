"""The README's variable tables, generated from the settings so they cannot drift from the code.

A table sits between `<!-- settings: <section> ... -->` and `<!-- /settings -->`; the text around it is prose
people write. Every section appears in exactly one table, so each variable is documented once.
"""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from mlops.settings.errors import shown_default
from mlops.settings.model import SECTIONS

BLOCK = re.compile(r"(<!-- settings: (?P<sections>[a-z_ ]+) -->\n)(?P<table>.*?)(<!-- /settings -->)", re.S)


def type_label(annotation: Any) -> str:
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in get_args(annotation))
    if get_origin(annotation) is tuple:
        return "comma-separated names"
    return {Path: "path", str: "text", int: "whole number", bool: "true/false"}.get(annotation, str(annotation))


def table(sections: list[str]) -> str:
    rows = ["| variable | type | default | what it is for |", "|---|---|---|---|"]
    for section in sections:
        for info in SECTIONS[section].model_fields.values():
            rows.append(f"| `{info.validation_alias}` | {type_label(info.annotation)} | {shown_default(info)} | "
                        f"{info.description} |")
    return "\n".join(rows) + "\n"


def rewrite(text: str) -> str:
    """`text` with every settings table regenerated; fails when a section is in no table or in two."""
    named = [s for m in BLOCK.finditer(text) for s in m["sections"].split()]
    unknown = sorted(set(named) - set(SECTIONS))
    missing = sorted(set(SECTIONS) - set(named))
    twice = sorted({s for s in named if named.count(s) > 1})
    if unknown or missing or twice:
        raise ValueError(f"settings tables: unknown sections {unknown}, sections in no table {missing}, sections "
                         f"in two tables {twice}; fix the `<!-- settings: ... -->` markers (sections: "
                         f"{', '.join(SECTIONS)})")
    return BLOCK.sub(lambda m: m[1] + table(m["sections"].split()) + m[4], text)
