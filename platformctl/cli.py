"""Thin CLI: parse, dispatch to commands/<name>.py, turn errors into exit codes.

Each module in platformctl.commands registers its own subcommands (`register(subparsers)`), setting
`func(root, args) -> int` as the handler; COMMAND_MODULES lists them. The run's configuration is loaded
once, on first use, through `args.context` (services.context.Context; handlers get it with context_of).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from .commands import COMMAND_MODULES, COMMANDS
from .errors import INTERRUPTED, PlatformError
from .output import warn
from .services.context import Context


def _root() -> Path:
    return Path(os.environ.get("PLATFORM_ROOT", Path(__file__).resolve().parent.parent))


def _command_word(argv: list[str]) -> str | None:
    """The command named on the command line (after the global options), or None."""
    it = iter(argv)
    for tok in it:
        if tok == "--set":
            next(it, None)
        elif not tok.startswith("-"):
            return tok
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given argv naming a known command, only the module registering it is imported (each pulls
    in its own libraries: `lock` starts ~0.5 s sooner without the others); otherwise (--help, a typo) all of
    them, so that argparse lists every command."""
    p = argparse.ArgumentParser(prog="build.py", description="Build and ship the ML Airflow platform.")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a platform.yaml value for this run, e.g. --set image.python=3.11")
    p.add_argument("--traceback", action="store_true", help="show the full traceback on errors")
    sub = p.add_subparsers(dest="command", required=True)
    wanted = _command_word(argv) if argv is not None else None
    for name in [COMMANDS[wanted]] if wanted in COMMANDS else COMMAND_MODULES:
        importlib.import_module(f"platformctl.commands.{name}").register(sub)
    return p


def report(exc: PlatformError) -> None:
    """The error, once, whichever command raised it: its problems first (a PipelineError lists every
    problem, one `file:line: what` line each), then its one line."""
    for problem in getattr(exc, "problems", None) or ():
        warn(f"error: {problem}")
    warn(f"error: {exc.one_line()}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    root = _root()
    args.context = Context(root, list(args.sets))
    try:
        return int(args.func(root, args) or 0)
    except PlatformError as exc:
        if args.traceback:
            raise
        report(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        warn("interrupted")
        return INTERRUPTED
