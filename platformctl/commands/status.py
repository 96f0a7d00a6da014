"""`make status` (what runs where) and `make diff FROM=dev TO=prod`; both read-only."""

from __future__ import annotations

import json

from ..errors import StatusIncomplete
from ..output import say
from ..services import inspect
from ..services.context import context_of
from ..status import diff_lines, status_lines, unreadable_lines

_factory = inspect.skopeo_factory  # the registry client factory (tests replace it)


def _finish(unreadable: list[dict]) -> int:
    """Each unreadable part is listed once in the output (unreadable_lines); the CLI edge adds one line."""
    if unreadable:
        raise StatusIncomplete(f"{len(unreadable_lines(unreadable))} part(s) could not be read (listed above)",
                               "the rest above is what could be read; fix the access and run it again")
    return 0


def cmd_status(root, args) -> int:
    s = inspect.status(root, context_of(root, args).config, args.env, factory=_factory)
    say(json.dumps(s.to_json(), indent=2, sort_keys=True) if args.json else "\n".join(status_lines(s)))
    return _finish(s.unreadable)


def cmd_diff(root, args) -> int:
    d = inspect.diff(root, context_of(root, args).config, args.from_env, args.to_env, factory=_factory)
    say(json.dumps(d, indent=2, sort_keys=True) if args.json else "\n".join(diff_lines(d)))
    return _finish(d["unreadable"])


def register(sub) -> None:
    p = sub.add_parser("status", help="what runs in every environment (registry + bundle store), and the drift")
    p.add_argument("--env", action="append", default=None, help="only this environment (repeatable)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)
    d = sub.add_parser("diff", help="configuration and live-state difference between two environments")
    d.add_argument("--from", dest="from_env", required=True)
    d.add_argument("--to", dest="to_env", required=True)
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.set_defaults(func=cmd_diff)
