"""`make docs` and `make docs-check`: docs/commands.md generated from the CLI's parser (platformctl/docs.py)."""

from __future__ import annotations

from pathlib import Path

from ..docs import DOC, generate
from ..errors import RenderCheckError
from ..output import say


def docs(root: Path, args) -> int:
    (root / DOC).write_text(generate(root))
    say(f"docs: wrote {DOC}")
    return 0


def docs_check(root: Path, args) -> int:
    path = root / DOC
    if not path.is_file() or path.read_text() != generate(root):
        raise RenderCheckError(f"{DOC} is out of date with the commands, the Makefile or the exit codes",
                               "run make docs and commit the file")
    say(f"docs-check: {DOC} is up to date")
    return 0


def register(sub) -> None:
    sub.add_parser("docs", help=f"write {DOC} from the CLI's parser, the Makefile and the exit codes"
                   ).set_defaults(func=docs)
    sub.add_parser("docs-check", help=f"fail if {DOC} is out of date (run make docs)").set_defaults(func=docs_check)
