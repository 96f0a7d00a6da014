"""Format versions: which version a file is written in, and the steps from each version to the next.

A file without `version` is version 1 (the format before versions were written down); a version
newer than CURRENT is refused, naming the version this platform reads. Each version is validated by
its own model and rendered as written (a v1 file renders exactly as it always did).

MIGRATIONS[n] rewrites a version-n document into version n+1 *in place*, on any mutable mapping:
plain dicts (tests) and ruamel.yaml's round-trip CommentedMap (`make migrate`, which keeps comments,
key order and layout). Each step must be idempotent and keep what the rendered DAG does.

When the format changes: add the new model in model.py, bump CURRENT, add MIGRATIONS[CURRENT-1],
and document it in docs/pipelines.md (Format versions).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Callable

CURRENT = 2
FIRST = 1


class VersionError(ValueError):
    pass


def read_version(data: Any) -> int:
    version = data.get("version", FIRST) if hasattr(data, "get") else FIRST
    if not isinstance(version, int) or isinstance(version, bool) or version < FIRST:
        raise VersionError(f"{version!r} is not a format version (this platform reads versions "
                           f"{FIRST}-{CURRENT}; write version: {CURRENT})")
    if version > CURRENT:
        raise VersionError(f"format version {version} is newer than this platform reads (version {CURRENT}): "
                           f"update the platform repository, or write the file in version {CURRENT}")
    return version


def _insert(mapping: MutableMapping, pos: int, key: str, value: Any) -> None:
    """Insert key at pos: ruamel's CommentedMap keeps the position, a dict appends."""
    if hasattr(mapping, "insert"):
        mapping.insert(pos, key, value)
    else:
        mapping[key] = value


def _pop_with_comments(mapping: MutableMapping, key: str) -> tuple[Any, Any]:
    """Pop key; with ruamel's CommentedMap, keep the lines that followed it (full-line comments and
    blank lines) where they were, and return its end-of-line comment token (None for a dict)."""
    keys = list(mapping.keys())
    value = mapping.pop(key)
    ca = getattr(mapping, "ca", None)
    slot = ca.items.pop(key, None) if ca is not None else None
    token = slot[2] if slot and len(slot) > 2 else None
    if token is None:
        return value, None
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    first, nl, rest = token.value.partition("\n")
    eol = CommentToken(first + nl, CommentMark(token.column)) if first.strip() else None
    if rest:
        i = keys.index(key)
        prev = keys[i - 1] if i > 0 else None
        if prev is not None and not (ca.items.get(prev) or [None, None, None])[2]:
            ca.items[prev] = [None, None, CommentToken("\n" + rest, CommentMark(0)), None]
    return value, eol


def migrate_v1_to_v2(doc: MutableMapping) -> list[str]:
    """version: 2; dag.retries moves to defaults.retries (the same retries for every job).

    In version 1, dag.retries was Airflow's default_args retries and defaults.retries, when set,
    overrode it on every job: so dag.retries becomes defaults.retries when that is unset, and is
    dropped (it had no effect) when it is set. Returns what changed, one line each.
    """
    notes: list[str] = []
    keys = list(doc.keys())
    if "version" in doc:
        doc["version"] = 2
    else:
        _insert(doc, 0, "version", 2)
        notes.append("added version: 2")
    dag = doc.get("dag")
    if isinstance(dag, MutableMapping) and "retries" in dag:
        retries, eol_comment = _pop_with_comments(dag, "retries")
        defaults = doc.get("defaults")
        if defaults is None:
            defaults = type(dag)()
            pos = keys.index("dag") + 1 + ("version" not in keys) if "dag" in keys else len(doc)
            _insert(doc, pos, "defaults", defaults)
        if isinstance(defaults, MutableMapping):
            if "retries" in defaults:
                notes.append(f"removed dag.retries ({retries}): defaults.retries ({defaults['retries']}) "
                             "already set every job's retries")
            elif retries:
                _insert(defaults, 0, "retries", retries)
                if eol_comment is not None and hasattr(defaults, "ca"):
                    defaults.ca.items["retries"] = [None, None, eol_comment, None]
                notes.append(f"moved dag.retries ({retries}) to defaults.retries")
            else:
                notes.append("removed dag.retries: 0 (the default)")
            if not defaults and "defaults" in doc:
                del doc["defaults"]
    return notes


MIGRATIONS: dict[int, Callable[[MutableMapping], list[str]]] = {1: migrate_v1_to_v2}


def migrate_document(doc: MutableMapping) -> tuple[int, list[str]]:
    """Rewrite doc (in place) to CURRENT; returns (the version it was in, what changed)."""
    version = read_version(doc)
    notes: list[str] = []
    original = version
    while version < CURRENT:
        notes += MIGRATIONS[version](doc)
        version += 1
    return original, notes


def migrate(data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Kept for callers of the v1 API: (a copy of data in the CURRENT format, the version it was in)."""
    import copy

    doc = copy.deepcopy(data)
    original, _ = migrate_document(doc)
    return doc, original
