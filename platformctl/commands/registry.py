"""`make push`, `make release VERSION=X.Y.Z`, `make promote ENV=prod VERSION=X.Y.Z` (services.ship does the work)."""

from __future__ import annotations

from ..output import say
from ..registry.auth import from_environment
from ..services import ship as service
from ..services.context import context_of


def _progress():
    last = {"mb": -1}

    def show(tag: str, sent: int) -> None:
        mb = sent // 50_000_000
        if mb != last["mb"]:
            last["mb"] = mb
            say(f"  {tag}: {sent / 1e6:.0f} MB uploaded")

    return show


def cmd_push(root, args) -> int:
    cfg = context_of(root, args).config
    service.push(root, cfg, from_environment(), echo=say, progress=_progress())
    return 0


def cmd_release(root, args) -> int:
    cfg = context_of(root, args).config
    r = service.release(root, cfg, args.version, from_environment(), echo=say)
    say(f"released {r.version}: {r.image}")
    say(f"  record {r.record_file}, changelog releases/CHANGELOG.md, git tag v{r.version} "
        f"(push it: git push origin v{r.version})")
    return 0


def cmd_promote(root, args) -> int:
    cfg = context_of(root, args).config
    r = service.promote(root, cfg, args.env, args.version, from_environment(), echo=say)
    say(("already promoted: " if r.already else "promoted ") + f"{r.version} to {r.environment}: "
        f"{r.repository}@{r.digest}")
    say(f"  {r.record_file} written; make deploy ENV={r.environment} points the instance at it")
    say(f"  {r.ledger}")  # the ledger entry around it (issue 38)
    return 0


def register(sub) -> None:
    p = sub.add_parser("push", help="push the tested build to the registry (version and sha tags), verify the digest")
    p.set_defaults(func=cmd_push)
    p = sub.add_parser("release", help="tag the pushed, tested build as release X.Y.Z (immutable), record it, git tag")
    p.add_argument("--version", required=True, help="X.Y.Z")
    p.set_defaults(func=cmd_release)
    p = sub.add_parser("promote", help="copy release X.Y.Z by digest to an environment's repository")
    p.add_argument("--env", required=True)
    p.add_argument("--version", required=True, help="X.Y.Z")
    p.set_defaults(func=cmd_promote)
