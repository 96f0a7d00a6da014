"""`make build` and `make test` (services.build does the work)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..services import build as service
from ..services.context import context_of


def build(root: Path, args) -> int:
    service.build(root, context_of(root, args).overrides,
                  service.BuildOptions(run_tests=not args.no_test, echo_log=not args.quiet, reuse=not args.no_reuse,
                                       full_tests=args.full_tests))
    return 0


def test(root: Path, args) -> int:
    pytest_args = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    return service.test(root, context_of(root, args).overrides, pytest_args)


def register(sub) -> None:
    p = sub.add_parser("build", help="set up this host if needed, lock-check, build the image, test it, "
                       "write build/build-record.json")
    p.add_argument("--no-test", action="store_true", help="skip the image tests (not for releases)")
    p.add_argument("--full-tests", action="store_true",
                   help="run every image check group, even those the build record holds a pass for")
    p.add_argument("--quiet", action="store_true", help="do not stream the build log (it is in build/build.log)")
    p.add_argument("--no-reuse", action="store_true",
                   help="build even when the registry has an image with the same inputs")
    p.set_defaults(func=build)
    t = sub.add_parser("test", help="set up this host if needed, build when no tested build of this tree exists, "
                       "then run every test (a missing engine or service fails, never skips)")
    t.add_argument("pytest_args", nargs=argparse.REMAINDER, help="passed to pytest (after --)")
    t.set_defaults(func=test)
