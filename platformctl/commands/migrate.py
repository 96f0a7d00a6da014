"""`make migrate`: rewrite pipelines/*.yaml to the current format version (round-trip: comments kept)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ConfigError
from ..pipelines.migrate import migrate_files
from ..pipelines.migrations import CURRENT
from ..pipelines.project import flavor_names, pipeline_files
from ..output import say


def migrate(root: Path, args) -> int:
    files = [root / f for f in args.files] if args.files else pipeline_files(root)
    for f in files:
        if not f.is_file():
            raise ConfigError(f"{f} is not a file", "name files under pipelines/, or none for all of them")
    results = migrate_files(root, files, flavor_names(root), write=not args.dry_run)
    changed = [r for r in results if r.changed]
    for r in changed:
        sys.stdout.write(r.diff())
        for note in r.notes:
            say(f"  {r.file}: {note}")
    verb = "would migrate" if args.dry_run else "migrated"
    say(f"migrate: {len(results)} pipeline(s); {verb} {len(changed)} to version {CURRENT}"
        + "".join(f"\n  {r.file}: version {r.from_version} -> {CURRENT}" for r in changed)
        + ("\n  run make render to regenerate dags/" if changed and not args.dry_run else ""))
    return 1 if args.dry_run and changed else 0


def register(sub) -> None:
    p = sub.add_parser("migrate", help=f"rewrite pipelines/*.yaml to format version {CURRENT} "
                                       "(comments and layout kept), print the diff")
    p.add_argument("files", nargs="*", help="pipeline files (default: every pipelines/*.yaml)")
    p.add_argument("--dry-run", action="store_true", help="print the diff only; exit 1 if a file would change")
    p.set_defaults(func=migrate)
