from __future__ import annotations

from pathlib import Path

from ..schemas import write_schemas
from ..output import say


def schema(root: Path, args) -> int:
    for path in write_schemas(root):
        say(f"wrote {path.relative_to(root)}")
    return 0


def register(sub) -> None:
    sub.add_parser("schema", help="write the JSON Schemas for editors into schemas/").set_defaults(func=schema)
