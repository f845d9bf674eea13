"""Champions at a glance, the audit trail, and rollback, from a shell.

    python -m mlops.registry status                 # every model: champion, metric, data interval
    python -m mlops.registry audit churn            # who moved which alias, when and why
    python -m mlops.registry rollback churn --reason "v7 mis-scores new stores" [--to-version 5]
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from mlops import tracking
from mlops.settings import Settings, get_settings
from mlops.spec import ModelSpec, SpecError, load_spec, spec_paths


def champion_row(settings: Settings, spec: ModelSpec) -> dict[str, Any]:
    """One line of the fleet summary: the champion, its primary metric on its own holdout, its data."""
    row = {"model": spec.name, "champion": "-", "metric": spec.evaluation.primary_metric, "value": "-",
           "interval": "-", "fingerprint": "-", "run": "-"}
    mv = tracking.version_by_alias(settings, spec.name, spec.promotion.alias)
    if mv is None:
        return row
    run_id = tracking.training_run_id(spec.name, mv)
    value = tracking.client(settings).get_run(run_id).data.metrics.get(spec.evaluation.primary_metric)
    start, end = mv.tags.get(tracking.WINDOW_FIRST, "?"), mv.tags.get(tracking.WINDOW_LAST, "?")
    return {**row, "champion": f"v{mv.version}", "value": f"{value:.4f}" if value is not None else "-",
            "interval": f"{start}..{end}", "fingerprint": mv.tags.get(tracking.FINGERPRINT, "-"), "run": run_id}


def format_table(rows: list[dict[str, Any]], headers: dict[str, str]) -> str:
    if not rows:
        return "(none)"
    widths = {k: max(len(h), *(len(str(r[k])) for r in rows)) for k, h in headers.items()}
    lines = ["  ".join(h.ljust(widths[k]) for k, h in headers.items()).rstrip(),
             "  ".join("-" * widths[k] for k in headers)]
    lines += ["  ".join(str(r[k]).ljust(widths[k]) for k in headers).rstrip() for r in rows]
    return "\n".join(lines)


CHAMPION_HEADERS = {"model": "model", "champion": "champion", "metric": "metric", "value": "value",
                    "interval": "data interval", "fingerprint": "data fingerprint", "run": "MLflow run"}


def load_valid_specs(settings: Settings, names: list[str] | None = None) -> list[ModelSpec]:
    """Every spec that loads (broken ones are reported on stderr and left out), or just the named ones."""
    specs = []
    for path in spec_paths(settings.models_dir):
        try:
            spec = load_spec(path, settings.expectations_dir)
        except SpecError as exc:
            print(exc, file=sys.stderr)
            continue
        if not names or spec.name in names:
            specs.append(spec)
    missing = set(names or []) - {s.name for s in specs}
    if missing:
        raise SystemExit(f"no valid spec for {sorted(missing)} in {settings.models_dir}")
    return specs


def _main(argv: list[str]) -> int:
    from mlops.audit import AuditLog
    from mlops.promotion import rollback

    p = argparse.ArgumentParser(prog="python -m mlops.registry", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("status", help="champion of every model")
    s.add_argument("models", nargs="*")
    a = sub.add_parser("audit", help="the audit trail of one model")
    a.add_argument("model")
    r = sub.add_parser("rollback", help="point the champion back at the previous champion (or --to-version)")
    r.add_argument("model")
    r.add_argument("--reason", required=True)
    r.add_argument("--to-version")
    r.add_argument("--actor", default=getpass.getuser())
    args = p.parse_args(argv)
    settings = get_settings()

    if args.command == "status":
        print(format_table([champion_row(settings, spec) for spec in load_valid_specs(settings, args.models)],
                           CHAMPION_HEADERS))
    elif args.command == "audit":
        (spec,) = load_valid_specs(settings, [args.model])
        rows = [{"time": rec.time[:19], "alias": rec.alias, "move": f"{rec.from_version or '-'} -> {rec.to_version}",
                 "action": rec.action, "actor": rec.actor, "reason": rec.reason}
                for rec in AuditLog(settings.audit_root, spec.name).records()]
        print(format_table(rows, {k: k for k in ("time", "alias", "move", "action", "actor", "reason")}))
    else:
        (spec,) = load_valid_specs(settings, [args.model])
        try:
            result = rollback(settings, spec, actor=args.actor, reason=args.reason, to_version=args.to_version)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(result.message)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
