#!/usr/bin/env python3
"""bench/upgrade: the rehearsal's relock + grouped comparison (issue #36 goal: <= 30 s warm) against the naive
alternative measured in the same run: a full re-resolution of every set (`make lock UPGRADE=1` after editing the
Airflow version: every pin may move) followed by a plain diff of the lock files. Prints seconds, the ratio and
how many image pins each moved (the naive relock also drags unrelated packages along). --whole: also time a
whole rehearsal (relock, build, checks, parse, lint, migration, smoke runs; goal <= 10 min warm) and print
its step times. Nothing is asserted. Run: make bench-upgrade [AIRFLOW=3.3.1] [WHOLE=1].
"""

from __future__ import annotations

import argparse
import difflib
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from platformctl.config import load_config
from platformctl.lock.core import lock_all, lock_filename
from platformctl.lock.files import read_pins
from platformctl.output import captured
from platformctl.upgrade.compare import compare
from platformctl.upgrade.relock import relock
from platformctl.upgrade.scratch import make_scratch


def moved(tree: Path, python: str) -> int:
    n = 0
    for s in ("airflow", "team"):
        a = read_pins((ROOT / "requirements" / lock_filename(s, python)).read_text())
        b = read_pins((tree / "requirements" / lock_filename(s, python)).read_text())
        n += sum(1 for k in set(a) | set(b) if a.get(k) != b.get(k))
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--airflow", default="3.3.1")
    ap.add_argument("--whole", action="store_true")
    args = ap.parse_args()
    cfg = load_config(ROOT)
    py = cfg.image.python

    # ours: relock with the current pins as preferences, then the grouped comparison
    s = make_scratch(ROOT, cfg.airflow_version, args.airflow, label="-bench")
    t0 = time.perf_counter()
    with captured():
        res = relock(s.root, load_config(s.root))
    t_relock = time.perf_counter() - t0
    c = compare(ROOT, s.root, py)
    ours = time.perf_counter() - t0
    assert res.ok, [x.line() for x in res.conflicts]

    # naive: every pin re-resolved (make lock UPGRADE=1), then a text diff of the lock files
    n = make_scratch(ROOT, cfg.airflow_version, args.airflow, label="-bench-naive")
    (n.root / "platform.yaml").write_text((s.root / "platform.yaml").read_text())
    (n.root / "requirements/airflow.in").write_text((s.root / "requirements/airflow.in").read_text())
    t0 = time.perf_counter()
    with captured():
        lock_all(n.root, load_config(n.root), upgrade=True, report=lambda *_: None)
    diff_lines = 0
    for f in sorted((n.root / "requirements").glob("*.txt")):
        diff_lines += sum(1 for _ in difflib.unified_diff((ROOT / "requirements" / f.name).read_text().splitlines(),
                                                          f.read_text().splitlines()))
    naive = time.perf_counter() - t0

    print(f"upgrade rehearsal relock + comparison, Airflow {cfg.airflow_version} -> {args.airflow}, python {py}")
    print(f"  ours : relock {t_relock:5.1f}s + comparison {ours - t_relock:4.2f}s = {ours:5.1f}s; "
          f"{moved(s.root, py)} image pins moved, {c.total()} grouped changes")
    print(f"  naive: full re-resolution + text diff = {naive:5.1f}s; {moved(n.root, py)} image pins moved, "
          f"{diff_lines} diff lines to read")
    print(f"  ratio naive/ours: {naive / ours:.2f}x time")
    if args.whole:
        from platformctl.upgrade import report
        from platformctl.upgrade.rehearse import UpgradeRequest, rehearse

        t0 = time.perf_counter()
        r = rehearse(ROOT, UpgradeRequest(args.airflow))
        report.write(r, ROOT)
        print(f"whole rehearsal: {time.perf_counter() - t0:.0f}s, verdict {r.verdict}")
        for st in r.runner.steps:
            print(f"  {st.name:<16} {st.status:<8} {st.seconds:6.1f}s")


if __name__ == "__main__":
    main()
