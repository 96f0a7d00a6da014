"""Thin CLI: parse, load configuration, dispatch to commands/<name>.py, turn errors into exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import PlatformError


def _root() -> Path:
    return Path(os.environ.get("PLATFORM_ROOT", Path(__file__).resolve().parent.parent))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="build.py", description="Build and ship the ML Airflow platform.")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a platform.yaml value for this run, e.g. --set image.python=3.11")
    p.add_argument("--traceback", action="store_true", help="show the full traceback on errors")
    sub = p.add_subparsers(dest="command", required=True)

    lock = sub.add_parser("lock", help="compile requirements/*.in into hashed locks per Python")
    lock.add_argument("--upgrade", action="store_true", help="re-resolve every pin to its newest allowed version")
    lock.add_argument("--upgrade-package", action="append", default=[], metavar="NAME",
                      help="allow NAME to move to its newest allowed version (repeatable)")
    sub.add_parser("lock-check", help="fail if any lock is stale or hand-edited (no resolution)")
    build = sub.add_parser("build", help="lock-check, build the image, test it, write build/build-record.json")
    build.add_argument("--no-test", action="store_true", help="skip the image tests (not for releases)")
    build.add_argument("--quiet", action="store_true", help="do not stream the build log (it is in build/build.log)")
    sub.add_parser("schema", help="write the JSON Schemas for editors into schemas/")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = _root()
    try:
        from . import commands

        handler = getattr(commands, args.command.replace("-", "_"))
        return int(handler(root, args) or 0)
    except PlatformError as exc:
        if args.traceback:
            raise
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
