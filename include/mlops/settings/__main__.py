"""`python -m mlops.settings docs [--write README.md]`: print or rewrite the README's variable tables.
`python -m mlops.settings check`: fail, naming every bad variable, when the environment's settings are wrong."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from mlops.settings import SettingsError, load
    from mlops.settings.docs import rewrite

    parser = argparse.ArgumentParser(prog="python -m mlops.settings")
    commands = parser.add_subparsers(dest="command", required=True)
    docs = commands.add_parser("docs", help="the README with its variable tables regenerated")
    docs.add_argument("readme", nargs="?", default="README.md", type=Path)
    docs.add_argument("--write", action="store_true", help="rewrite the file instead of printing it")
    commands.add_parser("check", help="read the settings from the environment and report what is wrong")
    args = parser.parse_args(argv)
    if args.command == "check":
        try:
            load()
        except SettingsError as exc:
            print(exc, file=sys.stderr)
            return 1
        print("platform settings: ok")
        return 0
    text = rewrite(args.readme.read_text())
    if args.write:
        args.readme.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
