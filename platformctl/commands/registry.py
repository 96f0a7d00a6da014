"""`make push`, `make release VERSION=X.Y.Z`, `make promote ENV=prod VERSION=X.Y.Z`."""

from __future__ import annotations

from ..registry.auth import from_environment
from ..registry.ship import promote, push, release
from ..output import say
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
    push(root, cfg, from_environment(), echo=say, progress=_progress())
    return 0


def cmd_release(root, args) -> int:
    cfg = context_of(root, args).config
    release(root, cfg, args.version, from_environment(), echo=say)
    return 0


def cmd_promote(root, args) -> int:
    from ..deploy.publish import record_promotion
    from ..deploy.store import open_store
    from ..environments import load_environment
    from ..errors import PlatformError
    from ..registry.records import load_release

    cfg = context_of(root, args).config
    env = load_environment(root, args.env)
    try:
        digest = load_release(root, args.version).get("digest")
    except PlatformError:
        digest = None  # promote names what is wrong with the version itself
    _, note = record_promotion(root, env, args.version, open_store,  # the ledger entry around it (issue 38)
                               lambda: promote(root, cfg, args.env, args.version, from_environment(), echo=say),
                               image_digest=digest)
    say(f"  {note}")
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
