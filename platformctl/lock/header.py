"""The generated header of a lock file and the fingerprints it records.

    # inputs: sha256 over the .in file, the configuration that shapes the resolution
    #         and the parent layers' content. A change to any of them makes the lock stale.
    # content: sha256 over the lock body. A hand edit makes it not match.

Checking both needs only hashing, no resolution: `make lock-check` is cheap.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

HEADER_PREFIX = "# "
MARK = "lock-fingerprint:"

_FP_RE = re.compile(r"^# lock-fingerprint: inputs=(sha256:[0-9a-f]{64}) content=(sha256:[0-9a-f]{64})\s*$")


def sha256(data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def inputs_fingerprint(inputs: dict) -> str:
    return sha256(json.dumps(inputs, sort_keys=True, separators=(",", ":")))


@dataclass(frozen=True)
class LockHeader:
    set_name: str
    python: str
    platform: str
    resolver: str
    parents: tuple[str, ...]
    inputs: str
    content: str


def render(h: LockHeader) -> str:
    layered = ", ".join(h.parents) if h.parents else "nothing (base layer)"
    return "\n".join(
        [
            "#",
            "# This file is generated: do not edit it by hand. To regenerate, run:",
            "#",
            "#    make lock",
            "#",
            f"# set: {h.set_name}  python: {h.python}  platform: {h.platform}  resolver: {h.resolver}",
            f"# layered on: {layered}",
            f"# lock-fingerprint: inputs={h.inputs} content={h.content}",
            "#",
            "",
        ]
    )


def split(text: str) -> tuple[str | None, str | None, str]:
    """(inputs fingerprint, content fingerprint, body). Fingerprints None when the header is missing."""
    lines = text.splitlines(keepends=True)
    i = 0
    inputs = content = None
    while i < len(lines) and lines[i].startswith("#"):
        m = _FP_RE.match(lines[i])
        if m:
            inputs, content = m.group(1), m.group(2)
        i += 1
    return inputs, content, "".join(lines[i:])


def body_fingerprint(body: str) -> str:
    # Normalise line endings and trailing whitespace so an editor's harmless re-save is not "hand edited".
    norm = "\n".join(line.rstrip() for line in body.strip().splitlines())
    return sha256(norm)
