"""`make status` (what runs where) and `make diff FROM=dev TO=prod`; both read-only."""

from __future__ import annotations

import json

from ..config import collect_overrides, load_config
from ..errors import StatusIncomplete
from ..output import say
from ..registry.auth import authfile, from_environment
from ..registry.skopeo import Skopeo
from ..status import diff_lines, env_diff, status, status_lines, unreadable_lines


def _factory(cfg, auth):
    def skopeo() -> Skopeo:  # one try per call: status reports an unreachable registry, it does not wait
        return Skopeo(authfile=auth, insecure_hosts=set(cfg.registry.insecure_hosts), attempts=1)

    return skopeo


def _finish(unreadable: list[dict]) -> int:
    """Each unreadable part is listed once in the output (unreadable_lines); the CLI edge adds one line."""
    if unreadable:
        raise StatusIncomplete(f"{len(unreadable_lines(unreadable))} part(s) could not be read (listed above)",
                               "the rest above is what could be read; fix the access and run it again")
    return 0


def _repos(root, cfg, names):
    from ..deploy.live import env_repository, resolve_environment

    return [env_repository(resolve_environment(root, n), cfg) for n in names]


def cmd_status(root, args) -> int:
    from ..deploy.live import environment_names

    cfg = load_config(root, collect_overrides(args.sets))
    names = args.env or environment_names(root)
    with authfile(from_environment(), *_repos(root, cfg, names)) as auth:
        s = status(root, cfg, _factory(cfg, auth), names)
    say(json.dumps(s.to_json(), indent=2, sort_keys=True) if args.json else "\n".join(status_lines(s)))
    return _finish(s.unreadable)


def cmd_diff(root, args) -> int:
    cfg = load_config(root, collect_overrides(args.sets))
    with authfile(from_environment(), *_repos(root, cfg, [args.from_env, args.to_env])) as auth:
        d = env_diff(root, cfg, _factory(cfg, auth), args.from_env, args.to_env)
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
