"""`python -m mlops.spec validate|schema`: check spec files (each on its own, then the files together),
or print the spec's JSON Schema for editors."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mlops.authoring import reference_problems
from mlops.spec.errors import SpecError
from mlops.spec.files import scan_spec_files
from mlops.spec.loader import expectations_beside, load_spec
from mlops.spec.models import json_schema
from mlops.spec.suite import unknown_expectations

DESCRIPTION = "The model spec: one YAML file per model, typed, checked all at once."


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops.spec", description=DESCRIPTION)
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
    return validate_files(args.paths, args.expectations, resolve_references=not args.no_import)


def validate_files(paths: list[Path], expectations: Path | None, resolve_references: bool) -> int:
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
        spec = load_spec(path, expectations or expectations_beside(path))
        print(f"{path}: ok ({spec.name}, task {spec.dataset.task}, backend {spec.compute.backend})")
    return 1 if failed else 0


def _file_problems(path: Path, expectations: Path | None, resolve_references: bool) -> list[str] | None:
    """What is wrong with one file beyond its shape, or None once its SpecError has been printed."""
    suites = expectations or expectations_beside(path)
    try:
        spec = load_spec(path, suites)
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return None
    problems = []
    if spec.validation.suite and suites is None:
        problems.append(f"validation.suite: '{spec.validation.suite}' is named but no expectations folder was found "
                        f"(looked for {path.resolve().parent.parent / 'expectations'}); pass --expectations DIR")
    elif spec.validation.suite and suites is not None:
        problems += unknown_expectations(suites / f"{spec.validation.suite}.yaml")
    if resolve_references:
        problems += reference_problems(spec.trainer)
    return problems
