"""Reading a spec: the file (size, encoding, YAML), the suite folder and the pool catalogue beside it,
then every check at once (checks.py). The DAG factory calls this at parse time: only pydantic and
PyYAML are imported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mlops.compute import Catalogue, catalogue_path, load_catalogue
from mlops.documents import read_yaml
from mlops.spec.checks import check
from mlops.spec.errors import SpecError
from mlops.spec.models import ModelSpec

MAX_SPEC_BYTES = 256 * 1024


def parse_spec(data: Any, path: str | Path = "<spec>", expectations_dir: Path | None = None,
               catalogue: Catalogue | None = None) -> ModelSpec:
    if not isinstance(data, dict):
        raise SpecError(path, ["(top level): the file must hold a mapping of fields; "
                               "see `python -m mlops.spec schema`"])
    spec, problems = check(data, path, expectations_dir, catalogue)
    if problems or spec is None:
        raise SpecError(path, problems)
    return spec


def load_spec(path: str | Path, expectations_dir: Path | None = None, catalogue: Catalogue | None = None) -> ModelSpec:
    """Load and check one spec. The suite folder and the pool catalogue default to the `expectations/`
    and `compute/` folders beside the spec's folder, when they exist."""
    path = Path(path)
    data = _read_document(path)
    if expectations_dir is None:
        expectations_dir = expectations_beside(path)
    if catalogue is None:
        candidate = catalogue_path(path.resolve().parent.parent / "compute")
        catalogue = load_catalogue(candidate) if candidate.is_file() else None
    return parse_spec(data, path, expectations_dir, catalogue)


def expectations_beside(path: Path) -> Path | None:
    """The `expectations/` folder beside the spec's folder, when there is one."""
    candidate = Path(path).resolve().parent.parent / "expectations"
    return candidate if candidate.is_dir() else None


def _read_document(path: Path) -> Any:
    text = _read_text(path)
    try:
        return read_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise SpecError(path, [f"(YAML syntax) at {where}: {getattr(exc, 'problem', exc)}; fix the indentation or "
                               "quoting"]) from None


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError(path, [f"(file): {size:,} bytes; a spec is at most {MAX_SPEC_BYTES:,} bytes: keep long "
                                   "documentation out of it (link to it from `description`)"])
        return path.read_text()
    except OSError as exc:
        raise SpecError(path, [f"(file): cannot read it ({exc.strerror}); check the path"]) from None
    except UnicodeDecodeError as exc:
        raise SpecError(path, [f"(file): not UTF-8 text ({exc.reason} at byte {exc.start}); "
                               "save it as UTF-8"]) from None
