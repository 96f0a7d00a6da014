"""`make studio`, `make studio-assets`, `make studio-assets-check`."""

from __future__ import annotations

from pathlib import Path
from ..output import say, warn


def studio(root: Path, args) -> int:
    from ..studio.assets import require_bundle
    from ..studio.server import serve

    require_bundle()

    def ready(url: str) -> None:
        say(f"studio: serving {root.name}/pipelines/ on 127.0.0.1 (Ctrl-C stops it)\n  open {url}")

    serve(root, args.port, ready)
    warn("studio: stopped")
    return 0


def studio_assets(root: Path, args) -> int:
    from ..studio.assets import FILES, build

    out = build(root)
    say(f"studio-assets: wrote {', '.join(FILES)} in {out.relative_to(root)}")
    return 0


def studio_assets_check(root: Path, args) -> int:
    from ..studio.assets import check

    check(root)
    say("studio-assets-check: platformctl/studio/static/ matches studio/")
    return 0


def register(sub) -> None:
    p = sub.add_parser("studio", help="edit pipelines as graphs in the browser (local web app, 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to bind on 127.0.0.1 (default: a free one)")
    p.set_defaults(func=studio)
    sub.add_parser("studio-assets", help="build the studio's front end (npm ci + esbuild)").set_defaults(
        func=studio_assets)
    sub.add_parser("studio-assets-check", help="fail if the committed studio bundle differs from studio/").set_defaults(
        func=studio_assets_check)
