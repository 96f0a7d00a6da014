"""Reading .in requirement files and .txt lock files."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..errors import LockInputError


@dataclass(frozen=True)
class InLine:
    path: Path
    lineno: int
    text: str
    requirement: Requirement | None  # None for option lines (-c, -r, --index-url ...)


def read_in(path: Path, display: str) -> list[InLine]:
    """Parse a .in file; every requirement line must be a valid PEP 508 requirement."""
    out: list[InLine] = []
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        text = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not text:
            continue
        if text.startswith("-"):
            if text.startswith(("-r", "--requirement", "-c", "--constraint")):
                raise LockInputError(
                    f"'{text}' includes another file",
                    "layering is declared in platform.yaml lock_sets, not with -r/-c lines: remove it",
                    where=f"{display}:{lineno}",
                )
            out.append(InLine(path, lineno, text, None))
            continue
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            raise LockInputError(
                f"'{text}' is not a valid requirement: {exc}",
                "write it like 'package>=1.2' (PEP 508)",
                where=f"{display}:{lineno}",
            ) from None
        out.append(InLine(path, lineno, text, req))
    return out


_PIN_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def read_pins(text: str) -> dict[str, str]:
    """name -> version from a compiled lock (continuation and comment lines skipped)."""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        m = _PIN_RE.match(line)
        if m:
            pins[canonicalize_name(m.group(1))] = m.group(3)
    return pins


def pin_lines(text: str) -> dict[str, int]:
    """name -> 1-based line number of its pin."""
    out: dict[str, int] = {}
    for i, line in enumerate(text.splitlines(), start=1):
        m = _PIN_RE.match(line)
        if m:
            out[canonicalize_name(m.group(1))] = i
    return out
