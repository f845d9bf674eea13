"""python -m mlops.lineage <model> <version> [--json]: what made a version, who let it through, where it served."""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops.lineage", description=__doc__)
    parser.add_argument("model")
    parser.add_argument("version", help="a registered version (3 or v3), or an alias such as champion")
    parser.add_argument("--json", action="store_true", help="print the record as JSON")
    args = parser.parse_args(argv)

    from mlops import tracking
    from mlops.lineage.record import UnknownVersion, as_text, version_lineage
    from mlops.settings import get_settings
    from mlops.spec import SpecError, load_spec

    settings = get_settings()
    path = settings.models_dir / f"{args.model}.yaml"
    if not path.is_file():
        parser.error(f"no spec {path}: name a model of {settings.models_dir} (MLOPS_MODELS_DIR)")
    try:
        spec = load_spec(path, settings.expectations_dir)
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return 2
    version = args.version
    if not version.removeprefix("v").isdigit():
        mv = tracking.version_by_alias(settings, spec.name, version)
        if mv is None:
            parser.error(f"{spec.name} has no alias '{version}'; name a version number")
        version = str(mv.version)
    try:
        lineage = version_lineage(settings, spec, version)
    except UnknownVersion as exc:
        print(exc, file=sys.stderr)
        return 2
    print(json.dumps(lineage, indent=2) if args.json else "\n".join(as_text(lineage)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
