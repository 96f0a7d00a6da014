"""Deploy and roll back bundles in a store.

The store's layout and documents (pointer, manifest, version hash, the per-version archive) are
ml_platform.bundle_format's. A version's files, then its archive, then its manifest, then the pointer.

A reader follows the pointer, so it never sees a half-uploaded bundle; an interrupted deploy leaves
the previous version live and complete. Unchanged files are copied inside the store (no upload).

The pointer is switched by compare-and-swap: the deploy remembers the pointer's ETag when it starts
and writes the new pointer only if it is unchanged (S3 If-Match / If-None-Match; a file lock for a
folder store). Of two deploys started together exactly one switches; the other fails naming the
winner's version. A store that ignores conditional writes gets a lock object with an expiry instead
(P/deploy.lock), held for the whole deploy.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ml_platform.bundle_format import (DEPLOY_LOCK as LOCK, MANIFEST, POINTER, VERSION_RE, archive_key,
                                       bundles_prefix, join as _join, lock_key, manifest_key, pointer_key,
                                       switched_pointer, version_prefix)
from ml_platform.bundle_format import MANIFEST_SIGNATURE, sha256_hex

from ..errors import DeployConflict, PlatformError, RollbackError
from .bundle import Bundle, manifest_bytes
from .ledger import Entry, Ledger
from .signing import Trust
from .store import PARALLEL_REQUESTS, BundleStore, ConflictError, md5_hex

__all__ = ["LOCK", "POINTER", "version_prefix", "DeployResult", "GcResult", "check_version", "deploy", "gc",
           "read_pointer", "read_pointer_tagged", "rollback", "DeployConflict", "RollbackError"]
HISTORY_LIMIT = 20
LOCK_TTL = 900  # seconds a lock object holds when the store has no conditional writes
LOCK_SETTLE = 1.0  # seconds to wait before reading the lock object back (last writer wins)
KEEP_VERSIONS = 20
INCOMPLETE_AGE = 3600  # a version without a manifest this old is an abandoned upload


@dataclass
class DeployResult:
    version: str
    live_prefix: str
    uploaded_files: int
    uploaded_bytes: int
    copied_files: int
    already_live: bool
    seconds: float
    entry: str | None = None  # the ledger entry (issue 38)
    key_id: str | None = None  # the key that signed the manifest and pointer (None: unsigned)


def check_version(to: str | None) -> None:
    """A rollback target must be a bundle version (b- and 16 hex digits); RollbackError otherwise."""
    if to is not None and not VERSION_RE.match(to):
        raise RollbackError(f"TO={to[:80]!r} is not a bundle version (b- and 16 hex digits, e.g. b-0123456789abcdef)",
                            "omit TO to go back to the previous version; make deploy prints each version")


def read_pointer(store: BundleStore, prefix: str) -> dict | None:
    raw = store.get(pointer_key(prefix))
    return json.loads(raw) if raw else None


def read_pointer_tagged(store: BundleStore, prefix: str) -> tuple[dict | None, str | None]:
    raw, etag = store.get_tagged(pointer_key(prefix))
    return (json.loads(raw) if raw else None), etag


def _lost(store: BundleStore, prefix: str, mine: str) -> DeployConflict:
    winner = (read_pointer(store, prefix) or {}).get("version", "?")
    return DeployConflict(f"another deploy or rollback made {winner} live while this one ran; {mine} was not "
                          f"switched live", "run the command again once the other one has finished "
                          "(files already uploaded are reused)")


@contextmanager
def _exclusive(store: BundleStore, prefix: str, version: str):
    """Nothing for a store with conditional writes (the pointer switch is the compare-and-swap);
    a lock object with an expiry otherwise."""
    if store.conditional_writes():
        yield
        return
    key = lock_key(prefix)
    me = {"owner": uuid.uuid4().hex, "version": version, "host": socket.gethostname(),
          "expires": time.time() + LOCK_TTL}
    raw = store.get(key)
    if raw:
        other = json.loads(raw)
        if other.get("expires", 0) > time.time():
            raise DeployConflict(f"another deploy of {other.get('version')} (from {other.get('host')}) holds {key} "
                                 f"for {int(other['expires'] - time.time())} s more",
                                 "wait for it to finish, or delete the lock object if that deploy died")
    store.put(key, manifest_bytes(me))
    time.sleep(LOCK_SETTLE)
    back = json.loads(store.get(key) or b"{}")
    if back.get("owner") != me["owner"]:
        raise DeployConflict(f"another deploy of {back.get('version')} (from {back.get('host')}) took {key} "
                             f"at the same time", "run the command again once the other one has finished")
    try:
        yield
    finally:
        if json.loads(store.get(key) or b"{}").get("owner") == me["owner"]:
            store.delete([key])


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _switch(store: BundleStore, prefix: str, version: str, manifest: dict, previous: dict | None,
            etag: str | None, *, manifest_raw: bytes | None = None, trust: Trust | None = None,
            entry: Entry | None = None) -> None:
    """Make `version` live, only if the pointer is still the one read (etag) when the command started.
    With a signer, the pointer carries a DSSE envelope over what it says, bound to the environment and the
    manifest's sha256 (ml_platform.bundle_format)."""
    pointer = switched_pointer(prefix, manifest, version, previous, switched_at=_now(),
                               switch_id=uuid.uuid4().hex,  # every switch writes new bytes: an ETag is never reused
                               history_limit=HISTORY_LIMIT).to_dict()
    if manifest_raw is not None:
        pointer["manifest_sha256"] = sha256_hex(manifest_raw)
    if entry is not None:
        pointer["ledger_entry"] = entry.id
    if trust is not None and trust.signer is not None:
        statement = {k: pointer.get(k) for k in ("version", "prefix", "switched_at", "switch_id",
                                                  "manifest_sha256", "ledger_entry")}
        pointer["envelope"] = trust.sign_pointer(statement)
    key = pointer_key(prefix)
    if store.conditional_writes():
        try:
            store.put_if(key, manifest_bytes(pointer), etag)
        except ConflictError:
            raise _lost(store, prefix, version) from None
    else:  # under the lock object: still refuse if the pointer moved since it was read
        if store.get_tagged(key)[1] != etag:
            raise _lost(store, prefix, version)
        store.put(key, manifest_bytes(pointer))


def deploy(store: BundleStore, prefix: str, bundle: Bundle, *, workers: int = PARALLEL_REQUESTS, on_progress=None,
           trust: Trust | None = None, ledger: Ledger | None = None, summary: str = "") -> DeployResult:
    """Upload `bundle` (files, manifest, the manifest's signature) and switch the pointer to it (signed).
    With a ledger: its entry is written before the switch (LedgerError: nothing switched) and completed after."""
    t0 = time.perf_counter()
    store.check()
    version = bundle.version
    vprefix = version_prefix(prefix, version)
    current, etag = read_pointer_tagged(store, prefix)
    key_id = trust.key_id if trust else None
    if current and current.get("version") == version:
        entry = None
        if ledger is not None:
            entry = ledger.begin("deploy", version=version, from_version=version, commit=bundle.commit,
                                 image_digest=bundle.image_digest, summary=summary, key_id=key_id)
            ledger.complete(entry, "already live: nothing switched")
        return DeployResult(version, vprefix, 0, 0, 0, True, time.perf_counter() - t0,
                            entry.id if entry else None, key_id)
    with _exclusive(store, prefix, version):
        return _deliver(store, prefix, bundle, current, etag, workers, on_progress, t0, trust, ledger, summary)


def _switch_recorded(store, prefix, version, manifest, current, etag, manifest_raw, trust, ledger, entry) -> None:
    """_switch, with the ledger entry (written before by the caller) completed after: its result either way."""
    try:
        _switch(store, prefix, version, manifest, current, etag, manifest_raw=manifest_raw, trust=trust, entry=entry)
    except PlatformError as exc:
        if ledger is not None and entry is not None:
            ledger.complete(entry, f"failed: {exc.one_line()[:300]}")
        raise
    if ledger is not None and entry is not None:
        ledger.complete(entry, "switched")


def _deliver(store, prefix, bundle, current, etag, workers, on_progress, t0, trust=None, ledger=None,
             summary="") -> DeployResult:
    version = bundle.version
    vprefix = version_prefix(prefix, version)
    existing = store.list(vprefix + "/")
    mkey = manifest_key(prefix, version)
    key_id = trust.key_id if trust else None

    def begin():
        if ledger is None:
            return None
        return ledger.begin("deploy", version=version, from_version=(current or {}).get("version"),
                            commit=bundle.commit, image_digest=bundle.image_digest, summary=summary, key_id=key_id)

    if mkey in existing:  # complete from an earlier deploy (e.g. rolled back from): just switch
        raw = store.get(mkey) or b"{}"
        manifest = json.loads(raw)
        if trust is not None and trust.signer is not None:  # the same content (its hash is the version): sign it
            store.put(_join(vprefix, MANIFEST_SIGNATURE), trust.sign_manifest(version, raw))
        entry = begin()
        _switch_recorded(store, prefix, version, manifest, current, etag, raw, trust, ledger, entry)
        return DeployResult(version, vprefix, 0, 0, 0, False, time.perf_counter() - t0, entry and entry.id, key_id)
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

    archive = bundle.archive()
    akey = archive_key(prefix, version)
    have = existing.get(akey)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(copy, copies))
        list(pool.map(upload, uploads))
    if not (have and have.etag == md5_hex(archive) and have.size == len(archive)):
        store.put(akey, archive)  # before the manifest: a complete version has its archive

    manifest = bundle.manifest(_now(), archive)
    raw = manifest_bytes(manifest)
    if trust is not None and trust.signer is not None:  # the signature before the manifest: complete = signed
        store.put(_join(vprefix, MANIFEST_SIGNATURE), trust.sign_manifest(version, raw))
    store.put(mkey, raw)  # the version is complete only now
    entry = begin()  # the ledger entry before the switch: if it cannot be written, nothing is switched
    _switch_recorded(store, prefix, version, manifest, current, etag, raw, trust, ledger, entry)  # live only now
    return DeployResult(version, vprefix, len(uploads), sum(f.size for _, f in uploads), len(copies), False,
                        time.perf_counter() - t0, entry and entry.id, key_id)


@dataclass(frozen=True)
class RollbackResult:
    previous: str  # the version live before the switch
    version: str  # the version live now
    entry: str | None = None  # the ledger entry written around the switch
    key_id: str | None = None  # the key that signed the new pointer

    def __iter__(self):  # (from, to), as rollback returned before
        return iter((self.previous, self.version))


def rollback(store: BundleStore, prefix: str, to: str | None = None, *, trust: Trust | None = None,
             ledger: Ledger | None = None, summary: str = "") -> RollbackResult:
    """Switch the pointer back (to the previous version, or `to`). The target's manifest signature is checked
    against the environment's keys first (BundleSignatureRefused: nothing switched); the new pointer is signed."""
    check_version(to)  # before the store is touched: `to` becomes part of a key
    store.check()
    current, etag = read_pointer_tagged(store, prefix)
    if not current:
        raise RollbackError("nothing is deployed here yet", "run make deploy first")
    target = to or next(iter(current.get("history", [])), None)
    if not target:
        raise RollbackError(f"{current['version']} is the only version deployed", "there is nothing to roll back to")
    if target == current["version"]:
        raise RollbackError(f"{target} is already live")
    tprefix = version_prefix(prefix, target)
    raw = store.get(manifest_key(prefix, target))
    if not raw:
        known = ", ".join(current.get("history", [])[:5]) or "none"
        raise RollbackError(f"version {target} is not a complete bundle in this store",
                            f"roll back to one of: {known}")
    if trust is not None:
        trust.check_stored(target, raw, store.get(_join(tprefix, MANIFEST_SIGNATURE)))
    manifest = json.loads(raw)
    key_id = trust.key_id if trust else None
    with _exclusive(store, prefix, target):
        entry = None
        if ledger is not None:
            entry = ledger.begin("rollback", version=target, from_version=current["version"],
                                 commit=manifest.get("commit"), image_digest=manifest.get("image_digest"),
                                 summary=summary or f"rollback {current['version']} -> {target}", key_id=key_id)
        _switch_recorded(store, prefix, target, manifest, current, etag, raw, trust, ledger, entry)
    return RollbackResult(current["version"], target, entry and entry.id, key_id)


@dataclass
class GcResult:
    kept: list[str]
    removed: list[str]
    removed_incomplete: list[str]
    removed_objects: int
    protected: dict[str, str] = field(default_factory=dict)  # version -> why


def gc(store: BundleStore, prefix: str, keep: int = KEEP_VERSIONS, in_use: set[str] | frozenset = frozenset(),
       *, dry_run: bool = False, now: float | None = None) -> GcResult:
    """Remove old versions: keep the `keep` newest complete ones, the live one, the rollback target and
    every version in `in_use` (what running DAG runs use, when Airflow can be asked); abandoned uploads
    (no manifest, untouched for INCOMPLETE_AGE) go too."""
    store.check()
    now = time.time() if now is None else now
    pointer = read_pointer(store, prefix) or {}
    base = bundles_prefix(prefix) + "/"
    by_version: dict[str, list] = {}
    for key, obj in store.list(base).items():
        by_version.setdefault(key[len(base):].split("/", 1)[0], []).append(obj)
    complete, incomplete = [], []
    for v, objs in by_version.items():
        if any(o.key == manifest_key(prefix, v) for o in objs):
            created = json.loads(store.get(manifest_key(prefix, v)) or b"{}").get("created", "")
            complete.append((created, max((o.modified or 0) for o in objs), v))
        else:
            incomplete.append((max((o.modified or now) for o in objs), v))
    # newest first: the order of switches (live, then the pointer's history), then manifest creation time
    order = [v for v in [pointer.get("version"), *pointer.get("history", [])] if v]
    complete.sort(key=lambda c: ((1, -order.index(c[2])) if c[2] in order else (0, 0), c[0], c[1]), reverse=True)
    protected: dict[str, str] = {}
    if pointer.get("version"):
        protected[pointer["version"]] = "live"
    if pointer.get("history"):
        protected.setdefault(pointer["history"][0], "rollback target")
    for v in in_use:
        protected.setdefault(v, "used by a running DAG run")
    for _, _, v in complete[:keep]:
        protected.setdefault(v, f"among the {keep} newest")
    removed = [v for _, _, v in complete if v not in protected]
    stale = [v for t, v in incomplete if now - t > INCOMPLETE_AGE and v not in protected]
    keys = [o.key for v in removed + stale for o in by_version[v]]
    if not dry_run and keys:
        # manifests first: a version being removed is never seen as complete with files missing
        manifests = [k for k in keys if k.endswith("/" + MANIFEST)]
        store.delete(manifests)
        store.delete([k for k in keys if not k.endswith("/" + MANIFEST)])
    kept = [v for _, _, v in complete if v in protected]
    return GcResult(kept, removed, stale, len(keys), {v: protected[v] for v in kept})
