"""Thin CLI: parse, load configuration, dispatch to commands/<name>.py, turn errors into exit codes.

Each module in platformctl.commands registers its own subcommands (`register(subparsers)`), setting
`func(root, args) -> int` as the handler; COMMAND_MODULES lists them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from .commands import COMMAND_MODULES
from .errors import PlatformError


def _root() -> Path:
    return Path(os.environ.get("PLATFORM_ROOT", Path(__file__).resolve().parent.parent))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="build.py", description="Build and ship the ML Airflow platform.")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a platform.yaml value for this run, e.g. --set image.python=3.11")
    p.add_argument("--traceback", action="store_true", help="show the full traceback on errors")
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"platformctl.commands.{name}").register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(_root(), args) or 0)
    except PlatformError as exc:
        if args.traceback:
            raise
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
