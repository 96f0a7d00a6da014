"""Deploy and roll back bundles in a store.

Layout under the environment's prefix P:
    P/bundles/<version>/...                      the bundle's files (immutable once complete)
    P/bundles/<version>/bundle-manifest.json     written after every file: marks the version complete
    P/current.json                               the pointer: which version is live, switched last

A reader follows the pointer, so it never sees a half-uploaded bundle; an interrupted deploy leaves
the previous version live and complete. Unchanged files are copied inside the store (no upload).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

from ..errors import PlatformError
from .bundle import MANIFEST, VERSION_RE, Bundle, manifest_bytes
from .store import BundleStore

POINTER = "current.json"
HISTORY_LIMIT = 20


class RollbackError(PlatformError):
    exit_code = 21
    kind = "rollback"


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def version_prefix(prefix: str, version: str) -> str:
    return _join(prefix, "bundles", version)


@dataclass
class DeployResult:
    version: str
    live_prefix: str
    uploaded_files: int
    uploaded_bytes: int
    copied_files: int
    already_live: bool
    seconds: float


def check_version(to: str | None) -> None:
    """A rollback target must be a bundle version (b- and 16 hex digits); RollbackError otherwise."""
    if to is not None and not VERSION_RE.match(to):
        raise RollbackError(f"TO={to[:80]!r} is not a bundle version (b- and 16 hex digits, e.g. b-0123456789abcdef)",
                            "omit TO to go back to the previous version; make deploy prints each version")


def read_pointer(store: BundleStore, prefix: str) -> dict | None:
    raw = store.get(_join(prefix, POINTER))
    return json.loads(raw) if raw else None


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _switch(store: BundleStore, prefix: str, version: str, manifest: dict, previous: dict | None) -> None:
    history = [previous["version"], *previous.get("history", [])] if previous else []
    history = [v for v in history if v != version][:HISTORY_LIMIT]
    pointer = {
        "version": version,
        "prefix": version_prefix(prefix, version),
        "switched_at": _now(),
        "image_digest": manifest.get("image_digest"),
        "commit": manifest.get("commit"),
        "history": history,
    }
    store.put(_join(prefix, POINTER), manifest_bytes(pointer))


def deploy(store: BundleStore, prefix: str, bundle: Bundle, *, workers: int = 16,
           on_progress=None) -> DeployResult:
    t0 = time.perf_counter()
    store.check()
    version = bundle.version
    vprefix = version_prefix(prefix, version)
    current = read_pointer(store, prefix)
    if current and current.get("version") == version:
        return DeployResult(version, vprefix, 0, 0, 0, True, time.perf_counter() - t0)

    existing = store.list(vprefix + "/")
    manifest_key = _join(vprefix, MANIFEST)
    if manifest_key in existing:  # complete from an earlier deploy (e.g. rolled back from): just switch
        manifest = json.loads(store.get(manifest_key) or b"{}")
        _switch(store, prefix, version, manifest, current)
        return DeployResult(version, vprefix, 0, 0, 0, False, time.perf_counter() - t0)

    # Files of the live version with the same content are copied inside the store, not uploaded.
    live_files: dict[str, str] = {}
    if current:
        live_manifest = store.get(_join(current["prefix"], MANIFEST))
        if live_manifest:
            for rel, meta in json.loads(live_manifest)["files"].items():
                live_files.setdefault(meta["sha256"], _join(current["prefix"], rel))

    uploads, copies = [], []
    for rel, f in bundle.files.items():
        key = _join(vprefix, rel)
        have = existing.get(key)
        if have and have.etag == f.md5 and have.size == f.size:
            continue  # left by an interrupted attempt, already right
        (copies if f.sha256 in live_files else uploads).append((key, f))

    def upload(item):
        key, f = item
        store.put(key, f.data, {"sha256": f.sha256})
        if on_progress:
            on_progress(key)

    def copy(item):
        key, f = item
        store.copy(live_files[f.sha256], key)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(copy, copies))
        list(pool.map(upload, uploads))

    manifest = bundle.manifest(_now())
    store.put(manifest_key, manifest_bytes(manifest))  # the version is complete only now
    _switch(store, prefix, version, manifest, current)  # and live only now
    return DeployResult(version, vprefix, len(uploads), sum(f.size for _, f in uploads), len(copies), False,
                        time.perf_counter() - t0)


def rollback(store: BundleStore, prefix: str, to: str | None = None) -> tuple[str, str]:
    """Switch the pointer back (to the previous version, or `to`). Returns (from, to)."""
    check_version(to)  # before the store is touched: `to` becomes part of a key
    store.check()
    current = read_pointer(store, prefix)
    if not current:
        raise RollbackError("nothing is deployed here yet", "run make deploy first")
    target = to or next(iter(current.get("history", [])), None)
    if not target:
        raise RollbackError(f"{current['version']} is the only version deployed", "there is nothing to roll back to")
    if target == current["version"]:
        raise RollbackError(f"{target} is already live")
    raw = store.get(_join(version_prefix(prefix, target), MANIFEST))
    if not raw:
        known = ", ".join(current.get("history", [])[:5]) or "none"
        raise RollbackError(f"version {target} is not a complete bundle in this store",
                            f"roll back to one of: {known}")
    _switch(store, prefix, target, json.loads(raw), current)
    return current["version"], target
