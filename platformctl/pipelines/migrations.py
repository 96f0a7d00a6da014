"""Format versions. A file without `version` is read as CURRENT; a newer version is refused.

When the format changes: bump CURRENT, add a function MIGRATIONS[n] that turns a version-n mapping
into version n+1 (pure, on plain data), and document it in docs/pipelines.md. Old files keep working
(they are migrated in memory when loaded); `make render` records the version each DAG came from.
"""

from __future__ import annotations

from typing import Any, Callable

CURRENT = 1
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    # 1: migrate_v1_to_v2,   # the next format change lands here
}


class VersionError(ValueError):
    pass


def migrate(data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Return (data in the CURRENT format, the version the file was written in)."""
    version = data.get("version", CURRENT)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise VersionError(f"version {version!r} is not a format version (use version: {CURRENT})")
    if version > CURRENT:
        raise VersionError(f"format version {version} is newer than this platform understands ({CURRENT}): "
                           "update the platform repository, or write version: " + str(CURRENT))
    original = version
    while version < CURRENT:
        data = MIGRATIONS[version](dict(data))
        version += 1
        data["version"] = version
    return data, original
