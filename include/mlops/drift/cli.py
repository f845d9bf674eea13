"""`python -m mlops.drift`: drift between two data files, column by column.

    python -m mlops.drift --reference REF --current CUR [--columns a b ...] [--format text|json]
                          [--fail-on-drift] [--bins 10]

Reads Parquet (.parquet, .pq) or CSV (.csv), local or at an fsspec URL (gs://bucket/...). Exit codes: 0
whatever the verdict; 1 with --fail-on-drift when a column drifted; 2 on bad input (a missing file, a
column missing on one side, no rows, non-numeric values in a numeric column), with a one-line error on
stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

EXIT_OK, EXIT_DRIFT, EXIT_BAD_INPUT = 0, 1, 2


class BadInput(Exception):
    pass


def read_table(path: str) -> pd.DataFrame:
    from mlops import storage

    if storage.is_url(path):
        fs, inner = storage.filesystem(path)
        if not fs.isfile(inner):
            raise BadInput(f"{path}: no such file")
    elif not Path(path).is_file():
        raise BadInput(f"{path}: no such file")
    suffix = Path(path.split("://", 1)[-1]).suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = storage.read_frame(path, "parquet")
        elif suffix == ".csv":
            frame = storage.read_frame(path, "csv")
        else:
            raise BadInput(f"{path}: unknown format '{suffix}'; give a .parquet, .pq or .csv file")
    except BadInput:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader error is the file's problem, said in one line
        raise BadInput(f"{path}: cannot be read as {suffix[1:]}: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
    return frame


def render_text(report: dict[str, Any]) -> str:
    lines = [f"reference {report['reference']['path']} ({report['reference']['rows']} rows), "
             f"current {report['current']['path']} ({report['current']['rows']} rows)", ""]
    header = f"{'column':<24} {'kind':<11} {'drifted':<7}  statistics"
    lines += [header, "-" * len(header)]
    for col in report["columns"]:
        figures = ", ".join(f"{k} {_fmt(v)}" for k, v in col["statistics"].items() if not isinstance(v, list))
        lines.append(f"{col['column']:<24} {col['kind']:<11} {str(col['drifted']).lower():<7}  {figures}")
        for reason in col["reasons"] + col["notes"]:
            lines.append(f"{'':<45}- {reason}")
    lines += ["", f"overall: {'DRIFT in ' + ', '.join(report['drifted_columns']) if report['drifted'] else 'no drift'}"]
    return "\n".join(lines)


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mlops.drift", description=__doc__.split("\n\n")[0])
    p.add_argument("--reference", required=True, help="the data the model was trained on (Parquet or CSV)")
    p.add_argument("--current", required=True, help="the data to check (Parquet or CSV)")
    p.add_argument("--columns", nargs="+", help="only these columns (default: every column of both files)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--fail-on-drift", action="store_true", help="exit 1 when any column drifted")
    p.add_argument("--bins", type=int, default=10, help="reference-quantile bins for numeric PSI (default 10)")
    args = p.parse_args(argv)

    from mlops.drift.compare import DriftInputError, Thresholds, compare_frames

    try:
        if args.bins < 2:
            raise BadInput(f"--bins must be at least 2, got {args.bins}")
        reference = read_table(args.reference)
        current = read_table(args.current)
        results = compare_frames(reference, current, args.columns, Thresholds(bins=args.bins))
    except (BadInput, DriftInputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    drifted = [r.column for r in results if r.drifted]
    report = {"reference": {"path": args.reference, "rows": len(reference)},
              "current": {"path": args.current, "rows": len(current)},
              "columns": [r.to_dict() for r in results], "drifted": bool(drifted), "drifted_columns": drifted}
    print(json.dumps(report, indent=2, default=str) if args.format == "json" else render_text(report))
    return EXIT_DRIFT if drifted and args.fail_on_drift else EXIT_OK
