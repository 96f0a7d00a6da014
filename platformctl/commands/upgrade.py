"""`make upgrade-test AIRFLOW=<version> [PYTHON=] [PROVIDERS=] [APPLY=1]`: rehearse an Airflow upgrade (or
downgrade) on a scratch copy and report (platformctl/upgrade). Exit 0 ready, 62 needs changes, 61 blocked."""

from __future__ import annotations

from pathlib import Path

from ..errors import UpgradeBlocked, UpgradeNeedsChanges
from ..output import say


def upgrade_test(root: Path, args) -> int:
    from ..upgrade import report
    from ..upgrade.rehearse import BLOCKED, NEEDS_CHANGES, UpgradeRequest, apply, rehearse

    req = UpgradeRequest(to_version=args.airflow, python=args.python or None, providers=args.providers or "",
                         smoke_pipelines=tuple(args.pipeline) or None)
    r = rehearse(root, req)
    report.write(r, root)
    say("")
    for line in report.summary_lines(r, root):
        say(line)
    where = str(r.scratch.report_md.relative_to(root))
    if args.apply and r.verdict != "ready":
        where += "; APPLY=1: nothing was written to the working tree"
    if r.verdict == BLOCKED:
        first = r.blockers[0]
        raise UpgradeBlocked(f"blocked: {first.what}", f"see {where}", where=first.where or None)
    if r.verdict == NEEDS_CHANGES:
        raise UpgradeNeedsChanges(f"needs changes: {len(r.changes)} item(s), first {r.changes[0].what}",
                                  f"see {where}", where=r.changes[0].where or None)
    if args.apply:
        files = apply(r, root)
        say(f"applied: {', '.join(files)} (review with git diff, then commit)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("upgrade-test", help="rehearse an Airflow upgrade end to end on a scratch copy and report")
    p.add_argument("--airflow", required=True, help="target Airflow version, e.g. 3.3.1 (lower versions work too)")
    p.add_argument("--python", default=None, help="the candidate image's Python (default: image.python)")
    p.add_argument("--providers", default="", help="move providers too: all, or a comma list of provider specs")
    p.add_argument("--pipeline", action="append", default=[],
                   help="smoke pipeline (repeatable; default: platform.yaml upgrade.smoke_pipelines)")
    p.add_argument("--apply", action="store_true",
                   help="when the verdict is ready, write the candidate's locks, airflow.in and platform.yaml")
    p.set_defaults(func=upgrade_test)
