"""Image references, registry hosts and the tags a build or a release gets."""

from __future__ import annotations

import re

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


def registry_host(repository: str) -> str:
    first = repository.split("/", 1)[0]
    if "/" in repository and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def is_local_registry(repository: str) -> bool:
    host = registry_host(repository).rsplit(":", 1)[0]
    return host in ("localhost", "::1") or host.startswith("127.")


def parse_semver(version: str) -> tuple[int, int, int]:
    m = SEMVER.match(version)
    if not m:
        raise ValueError(f"'{version}' is not a release version like 1.4.0")
    return int(m[1]), int(m[2]), int(m[3])


def build_tags(version_tag: str, short_sha: str) -> list[str]:
    """Every pushed build: its version (dev versions included) and sha-<7>."""
    return [version_tag, f"sha-{short_sha}"]


def release_tags(version: str, released: list[str], latest: bool = False) -> list[str]:
    """X.Y.Z always; X.Y and X only when this is the newest release of that line; latest if configured.

    Releasing 1.2.5 after 1.3.0 moves 1.2 but not 1 (1 stays on 1.3.0).
    """
    v = parse_semver(version)
    others = []
    for r in released:
        try:
            others.append(parse_semver(r))
        except ValueError:
            continue
    tags = [version]
    if all(o <= v for o in others if o[:2] == v[:2]):
        tags.append(f"{v[0]}.{v[1]}")
    if all(o <= v for o in others if o[0] == v[0]):
        tags.append(f"{v[0]}")
    if latest and all(o <= v for o in others):
        tags.append("latest")
    return tags
