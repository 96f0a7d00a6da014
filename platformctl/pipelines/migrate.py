"""`make migrate`: rewrite pipeline files to the current format version, keeping comments and layout.

ruamel.yaml's round-trip loader keeps comments, key order, flow/block style and quoting, so the
only lines that change are the ones a migration step touches (migrations.MIGRATIONS). Each result
is validated before anything is written; a file already in the current version is left alone, so
running it twice changes nothing.
"""

from __future__ import annotations

import difflib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PipelineError, Problem
from ..yamlfile import round_trip_yaml
from .migrations import CURRENT, VersionError, migrate_document, read_version
from .validate import check


@dataclass
class Migrated:
    file: str
    old: str
    new: str
    from_version: int
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.old != self.new

    def diff(self) -> str:
        return "".join(difflib.unified_diff(self.old.splitlines(True), self.new.splitlines(True),
                                            f"a/{self.file}", f"b/{self.file}"))


def _line_of_version(text: str) -> int | None:
    for i, line in enumerate(text.splitlines(), 1):
        if line.startswith("version:"):
            return i
    return None


def migrate_text(file: str, text: str) -> Migrated:
    """The file's text in the current version (unchanged if it already is); raises PipelineError."""
    y = round_trip_yaml()
    try:
        doc = y.load(text)
    except Exception as exc:  # ruamel's errors have no common base worth naming here
        raise PipelineError([Problem(file, getattr(getattr(exc, "problem_mark", None), "line", -1) + 1 or None, "",
                                     f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from None
    if not hasattr(doc, "get"):
        raise PipelineError([Problem(file, 1, "", "must be a mapping with dag: and jobs:")])
    try:
        version = read_version(doc)
    except VersionError as exc:
        raise PipelineError([Problem(file, _line_of_version(text), "version", str(exc))]) from None
    if version == CURRENT:
        return Migrated(file, text, text, version)
    _, notes = migrate_document(doc)
    buf = io.StringIO()
    y.dump(doc, buf)
    return Migrated(file, text, buf.getvalue(), version, notes)


def migrate_files(root: Path, files: list[Path], flavors: list[str], write: bool = True) -> list[Migrated]:
    """Migrate every file; nothing is written unless every result validates."""
    results = [migrate_text(p.relative_to(root).as_posix(), p.read_text()) for p in files]
    problems = [prob for r in results if r.changed for prob in check(r.file, r.new.encode(), flavors).problems]
    if problems:
        raise PipelineError(problems)
    if write:
        for r in results:
            if r.changed:
                path = root / r.file
                tmp = path.with_suffix(path.suffix + ".tmp")
                tmp.write_text(r.new)
                os.replace(tmp, path)
    return results
