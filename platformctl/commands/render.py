"""`make render` and `make render-check`."""

from __future__ import annotations

from pathlib import Path

from ..pipelines.project import pipeline_files, render_all, render_check as check_rendered
from ..output import say, warn


def _warn(warnings) -> None:
    for w in warnings:
        warn(f"warning: {w}")


def render(root: Path, args) -> int:
    warnings: list = []
    written, removed = render_all(root, args.template, warnings)
    _warn(warnings)
    n = len(pipeline_files(root))
    say(f"render: {n} pipeline(s); {len(written)} DAG file(s) written, {len(removed)} removed"
        + "".join(f"\n  wrote {w}" for w in written) + "".join(f"\n  removed {r}" for r in removed))
    return 0


def render_check(root: Path, args) -> int:
    check_rendered(root, args.template)
    say(f"render-check: dags/ is up to date with {len(pipeline_files(root))} pipeline(s)")
    return 0


def register(sub) -> None:
    for name, func, help_ in (("render", render, "render pipelines/*.yaml into dags/*.py"),
                              ("render-check", render_check, "fail if dags/ is out of date with pipelines/")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--template", default=None, help="Jinja template (default templates/dag.py.j2, "
                                                        "or $PIPELINE_TEMPLATE)")
        p.set_defaults(func=func)
