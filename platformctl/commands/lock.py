from __future__ import annotations

import time
from pathlib import Path

from ..executors import check_project as check_executors
from ..lock.core import assert_fresh, check_all, lock_all
from ..output import say
from ..services.context import context_of


def lock(root: Path, args) -> int:
    cfg = context_of(root, args).config
    t0 = time.perf_counter()
    results = lock_all(root, cfg, upgrade=args.upgrade, upgrade_packages=tuple(args.upgrade_package))
    changed = sum(r.changed for r in results)
    say(f"lock: {changed} of {len(results)} lock files written in {time.perf_counter() - t0:.1f}s")
    assert_fresh(root, cfg)
    return 0


def lock_check(root: Path, args) -> int:
    cfg = context_of(root, args).config
    problems = check_all(root, cfg)
    for p in problems:
        say(f"error: {p.line()}")
    if problems:
        assert_fresh(root, cfg)  # raises StaleLockError with the first problem
    check_executors(root, cfg.image.python)  # each environment's executor: its provider is in the image's locks
    say(f"lock-check: {len(cfg.python_versions) * len(cfg.lock_sets)} lock files up to date; every environment's "
        "executor has its provider locked")
    return 0


def register(sub) -> None:
    p = sub.add_parser("lock", help="compile requirements/*.in into hashed locks per Python")
    p.add_argument("--upgrade", action="store_true", help="re-resolve every pin to its newest allowed version")
    p.add_argument("--upgrade-package", action="append", default=[], metavar="NAME",
                   help="allow NAME to move to its newest allowed version (repeatable)")
    p.set_defaults(func=lock)
    sub.add_parser("lock-check", help="fail if any lock is stale or hand-edited (no resolution)").set_defaults(
        func=lock_check)
