"""Which file of a models folder defines which model: a model's DAG ids come from its file name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mlops.spec.models import NAME_PATTERN

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
            rejected[path] = (f"{path}: the file name '{path.name}' is not a model name; {FILE_NAME_RULE}. "
                              "Rename the file")
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
