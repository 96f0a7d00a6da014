from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from ..config import collect_overrides
from ..host.setup import prepare
from ..image.build import RECORD, build_image, build_plan, check_inputs, read_record

STRICT_ENV = "PLATFORM_TEST_STRICT"  # tests/conftest.py: a missing engine or service fails instead of skipping


def build(root: Path, args) -> int:
    t0, timings = time.perf_counter(), {}
    cfg, engine = prepare(root, collect_overrides(args.sets), "build",
                          preflight=lambda r, c: check_inputs(r, c, timings))
    rec = build_image(root, cfg, run_tests=not args.no_test, echo=not args.quiet, reuse=not args.no_reuse,
                      engine=engine, inputs_checked=True, full_tests=args.full_tests, timings=timings)
    print(f"built {rec.image} in {rec.build_seconds}s")
    print(f"  tags:     {', '.join(rec.tags)}")
    print(f"  image id: {rec.image_id}")
    print(f"  record:   {RECORD}")
    parts = [f"{k} {'cached' if v is None else f'{v:.1f}s'}" for k, v in rec.timings.items()]
    print(f"timing: {', '.join(parts + [f'total {time.perf_counter() - t0:.1f}s'])}")
    return 0


def tested_build_of_tree(root: Path, cfg, engine) -> bool:
    """The build record is of these exact inputs, passed its image tests, and the engine still has the image."""
    rec = read_record(root)
    if not rec or not rec.get("tested") or not rec.get("inputs"):
        return False
    _, _, inputs = build_plan(root, cfg, engine)
    return inputs == rec["inputs"] and engine.image_id(rec["image_id"]) is not None


def test(root: Path, args) -> int:
    cfg, engine = prepare(root, collect_overrides(args.sets), "test", preflight=check_inputs)
    if not tested_build_of_tree(root, cfg, engine):
        print("test: no tested build of this tree yet: running make build first", flush=True)
        build_image(root, cfg, engine=engine, inputs_checked=True)
    pytest_args = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    env = {**os.environ, STRICT_ENV: "1"}
    return subprocess.run([sys.executable, "-m", "pytest", "tests", *pytest_args], cwd=root, env=env).returncode


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
