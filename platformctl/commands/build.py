from __future__ import annotations

from pathlib import Path

from ..config import collect_overrides, load_config
from ..image.build import RECORD, build_image


def build(root: Path, args) -> int:
    cfg = load_config(root, collect_overrides(args.sets))
    rec = build_image(root, cfg, run_tests=not args.no_test, echo=not args.quiet, reuse=not args.no_reuse)
    print(f"built {rec.image} in {rec.build_seconds}s")
    print(f"  tags:     {', '.join(rec.tags)}")
    print(f"  image id: {rec.image_id}")
    print(f"  record:   {RECORD}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("build", help="lock-check, build the image, test it, write build/build-record.json")
    p.add_argument("--no-test", action="store_true", help="skip the image tests (not for releases)")
    p.add_argument("--quiet", action="store_true", help="do not stream the build log (it is in build/build.log)")
    p.add_argument("--no-reuse", action="store_true",
                   help="build even when the registry has an image with the same inputs")
    p.set_defaults(func=build)
