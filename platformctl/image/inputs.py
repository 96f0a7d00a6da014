"""The inputs fingerprint of an image: everything that decides its content, nothing that doesn't.

It covers the Dockerfile, every file of the build context (selected by .dockerignore, which is an
allow-list here), the build arguments except version/revision/created/source (they only describe the
build: labels and the ML_PLATFORM_IMAGE_* environment the plugin shows; source comes from the clone's
git remote, which differs between an https and an ssh clone of the same repository), the build target
and platform, and the base image's id. Two builds with the same fingerprint produce the same software; `make push` tags
the image `inputs-<fingerprint>` so that `make build` can find it in the registry and tag it instead of
rebuilding (the adopted image keeps the version, revision and created of the build that made it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..record import inputs_tag  # noqa: F401 - the tag a build with these inputs gets: named there
from ..engine import BuildSpec, context_paths

LABEL_ONLY_ARGS = {"VERSION", "REVISION", "CREATED", "SOURCE"}


def _dockerignore(root: Path) -> list[str] | None:
    """The .dockerignore patterns, or None when there is none or it is not an allow-list (first pattern
    `*`): the fingerprint reads every file of the context, which only an allow-list keeps small."""
    path = root / ".dockerignore"
    if not path.exists():
        return None
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return lines if lines and lines[0] == "*" else None


def context_files(root: Path) -> list[str] | None:
    """The files of the build context the engine receives (Dockerfile and .dockerignore aside), matched with
    the docker SDK's own .dockerignore semantics (Go filepath.Match, `**`, `!` exceptions, last match wins)."""
    patterns = _dockerignore(root)
    if patterns is None:
        return None
    paths = context_paths(root, patterns)
    return sorted(p for p in paths if p not in ("Dockerfile", ".dockerignore") and (root / p).is_file())


def inputs_fingerprint(root: Path, spec: BuildSpec, base_image_id: str | None) -> str | None:
    """None when it cannot be known (no allow-list, base image not local): then always build."""
    files = context_files(root)
    if files is None or not base_image_id:
        return None
    h = hashlib.sha256()
    for rel in ["Dockerfile", ".dockerignore", *files]:
        h.update(rel.encode() + b"\0" + hashlib.sha256((root / rel).read_bytes()).digest())
    for k, v in sorted(spec.build_args.items()):
        if k not in LABEL_ONLY_ARGS:
            h.update(f"arg {k}={v}\0".encode())
    h.update(f"target={spec.target} platform={spec.platform} base={base_image_id}\0".encode())
    return h.hexdigest()
