"""make verify-reproducible [REF=]: the committed tree built again with no cache is the same image."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import collect_overrides
from ..host.setup import prepare
from ..image.build import check_inputs
from ..image.reproducible import report_error, verify_reproducible
from ..output import say


def cmd_verify_reproducible(root: Path, args: argparse.Namespace) -> int:
    cfg, engine = prepare(root, collect_overrides(args.sets), "build", preflight=check_inputs)
    result = verify_reproducible(root, cfg, engine, ref=args.ref)
    if not result.same:
        raise report_error(result)
    say(f"reproducible: the rebuild is {result.actual_id[:19]}, the same image as "
        f"{args.ref or 'the build record'} ({len(result.actual_layers)} layers, each the same digest)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify-reproducible", help="build HEAD again with no cache (podman engine) and compare "
                       "it with the build record's image or REF=; names the first differing layer and files")
    p.add_argument("--ref", help="a pushed image to compare with instead of the build record (repository:tag or @digest)")
    p.set_defaults(func=cmd_verify_reproducible)
