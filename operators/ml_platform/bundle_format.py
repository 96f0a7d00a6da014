"""What a bundle store holds: the one definition of the DAG bundle's storage format.

Both sides use this module: `make deploy` / `rollback` / `gc` / `plan` / `status` (``platformctl.deploy``,
which writes and reads the store) and ``ml_platform.bundle.PlatformDagBundle`` (which Airflow's DAG
processor and workers use to follow the pointer). It imports nothing from Airflow nor from platformctl,
only the standard library (and securesystemslib, lazily, for signatures), so it is cheap to import on either side.

Layout under an environment's stable prefix ``P`` (any ``/``-separated key prefix; empty means the
store's root)::

    P/current.json                               the pointer: which version is live (switched last)
    P/deploy.lock                                a deploy's lock object (only on stores without
                                                 conditional writes)
    P/bundles/<version>/<files>                  the bundle's files (immutable once complete)
    P/bundles/<version>/bundle.tar.gz            every file of the version in one deterministic archive
                                                 (written before the manifest; see "Archive" below)
    P/bundles/<version>/bundle-manifest.json     every file's sha256 and size; written after every
                                                 file: a version is complete only once it exists
    P/ledger/<rank>-<entry>.json                 the deploy ledger (written and read by platformctl only,
    P/ledger/<rank>-<entry>.done.json            never by the bundle class): see "Deploy ledger" below

A version is a content address (``version_hash``): ``b-`` and 16 hex digits of a sha256 over every
file's path and sha256 and the image digest. The same files for the same image give the same version;
a manifest whose files do not hash to its version was changed after the deploy.

Manifest (JSON object, serialized by ``to_bytes``)::

    {"version": "b-...", "created": "2026-01-01T00:00:00Z", "image_digest": "sha256:..." | null,
     "commit": "<git sha>" | null, "files": {"<rel path>": {"sha256": "<hex>", "size": <int>}, ...},
     "archive": {"name": "bundle.tar.gz", "sha256": "<hex>", "size": <int>}}   (versions deployed since #34)

Pointer (JSON object, ``current.json``)::

    {"version": "b-...", "prefix": "P/bundles/b-...", "switched_at": "...Z", "switch_id": "<hex>",
     "image_digest": ... , "commit": ..., "history": ["<previous version>", ...]}

Keys a reader does not know are kept (``extra``) and written back unchanged, so a newer writer's
fields (e.g. signatures) survive an older reader. Parsing errors are ``FormatError`` (a ValueError)
with a message naming what is wrong; each side turns it into its own error type.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, Mapping

POINTER = "current.json"
MANIFEST = "bundle-manifest.json"
BUNDLES = "bundles"  # the folder (key prefix) under P holding one folder per version
DEPLOY_LOCK = "deploy.lock"
VERSION_RE = re.compile(r"^b-[0-9a-f]{16}$")


class FormatError(ValueError):
    """Bytes read from a store are not the object the format says should be there."""


# --------------------------------------------------------------------------------------------- keys
def join(*parts: str) -> str:
    """Join key parts with "/", dropping empty parts and stray slashes (a store key never starts with /)."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def pointer_key(prefix: str) -> str:
    return join(prefix, POINTER)


def lock_key(prefix: str) -> str:
    return join(prefix, DEPLOY_LOCK)


def bundles_prefix(prefix: str) -> str:
    """The key prefix every version's folder is under (no trailing slash)."""
    return join(prefix, BUNDLES)


def version_prefix(prefix: str, version: str) -> str:
    return join(prefix, BUNDLES, version)


def manifest_key(prefix: str, version: str) -> str:
    return join(version_prefix(prefix, version), MANIFEST)


def is_version(name: str) -> bool:
    return bool(VERSION_RE.match(name))


def safe_rel(rel: str) -> PurePosixPath | None:
    """A manifest's file path as a relative path that stays inside its version folder, else None."""
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        return None
    return pure


# ------------------------------------------------------------------------------------------ version
def version_hash(files: Mapping[str, str], image_digest: str | None) -> str:
    """The content address of a bundle: ``files`` maps each relative path to its sha256 (hex)."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(f"{rel}\0{files[rel]}\n".encode())
    h.update(f"image\0{image_digest or ''}\n".encode())
    return "b-" + h.hexdigest()[:16]


def version_of(manifest: Mapping[str, Any]) -> str:
    """The version a manifest (as a dict) hashes to: compare with its name to detect a changed manifest."""
    files = manifest.get("files") or {}
    return version_hash({rel: meta["sha256"] for rel, meta in files.items()}, manifest.get("image_digest"))


# ---------------------------------------------------------------------------------------- documents
def to_bytes(document: Mapping[str, Any]) -> bytes:
    """How every JSON object in the store is written: sorted keys, 2-space indent, a final newline."""
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def _object(raw: bytes, what: str) -> dict:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"{what} is not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise FormatError(f"{what} is not a JSON object")
    return doc


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


_MANIFEST_KEYS = ("version", "created", "image_digest", "commit", "files")


@dataclass(frozen=True)
class Manifest:
    """A version's ``bundle-manifest.json``."""

    version: str
    files: dict[str, FileEntry]
    created: str | None = None
    image_digest: str | None = None
    commit: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys this reader does not know, kept as read

    @classmethod
    def build(cls, files: Mapping[str, FileEntry], *, image_digest: str | None, commit: str | None,
              created: str | None) -> "Manifest":
        """A new manifest for these files; its version is their hash."""
        files = dict(sorted(files.items()))
        version = version_hash({rel: f.sha256 for rel, f in files.items()}, image_digest)
        return cls(version, files, created, image_digest, commit)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], what: str = MANIFEST) -> "Manifest":
        files = doc.get("files")
        if not isinstance(files, dict):
            raise FormatError(f"{what} is not a bundle manifest (no 'files' object)")
        entries: dict[str, FileEntry] = {}
        for rel, meta in files.items():
            if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str):
                raise FormatError(f"{what}: file {rel!r} has no sha256")
            entries[rel] = FileEntry(meta["sha256"], int(meta.get("size") or 0))
        version = doc.get("version")
        return cls(version if isinstance(version, str) else "", entries, doc.get("created"),
                   doc.get("image_digest"), doc.get("commit"),
                   {k: v for k, v in doc.items() if k not in _MANIFEST_KEYS})

    @classmethod
    def parse(cls, raw: bytes, what: str = MANIFEST) -> "Manifest":
        return cls.from_dict(_object(raw, what), what)

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, "version": self.version, "created": self.created, "image_digest": self.image_digest,
                "commit": self.commit,
                "files": {rel: {"sha256": f.sha256, "size": f.size} for rel, f in sorted(self.files.items())}}

    def to_bytes(self) -> bytes:
        return to_bytes(self.to_dict())

    def content_version(self) -> str:
        """The version these files and image hash to (equals ``version`` unless the manifest was changed)."""
        return version_hash({rel: f.sha256 for rel, f in self.files.items()}, self.image_digest)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files.values())


_POINTER_KEYS = ("version", "prefix", "switched_at", "switch_id", "image_digest", "commit", "history")


@dataclass(frozen=True)
class Pointer:
    """An environment's ``current.json``: the live version and the versions live before it (newest first)."""

    version: str
    prefix: str  # the live version's folder (version_prefix of the environment's prefix)
    switched_at: str | None = None
    switch_id: str | None = None  # new on every switch: a pointer's bytes (and ETag) are never reused
    image_digest: str | None = None
    commit: str | None = None
    history: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], base: str = "", what: str = POINTER) -> "Pointer":
        """``base`` is the environment's prefix: the version folder when an old pointer has no 'prefix'."""
        version = doc.get("version")
        if not isinstance(version, str) or not version:
            raise FormatError(f"{what} is not a pointer (no 'version')")
        history = doc.get("history") or []
        return cls(version, doc.get("prefix") or version_prefix(base, version), doc.get("switched_at"),
                   doc.get("switch_id"), doc.get("image_digest"), doc.get("commit"),
                   [v for v in history if isinstance(v, str)] if isinstance(history, list) else [],
                   {k: v for k, v in doc.items() if k not in _POINTER_KEYS})

    @classmethod
    def parse(cls, raw: bytes, base: str = "", what: str = POINTER) -> "Pointer":
        return cls.from_dict(_object(raw, what), base, what)

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, "version": self.version, "prefix": self.prefix, "switched_at": self.switched_at,
                "switch_id": self.switch_id, "image_digest": self.image_digest, "commit": self.commit,
                "history": list(self.history)}

    def to_bytes(self) -> bytes:
        return to_bytes(self.to_dict())


def switched_pointer(prefix: str, manifest: Mapping[str, Any] | Manifest, version: str,
                     previous: Pointer | Mapping[str, Any] | None, *, switched_at: str, switch_id: str,
                     history_limit: int = 20) -> Pointer:
    """The pointer that makes ``version`` live after ``previous``: the previous version goes first in the
    history (without ``version`` itself), at most ``history_limit`` entries."""
    if isinstance(previous, Mapping):
        previous = Pointer.from_dict(previous, prefix)
    history = [previous.version, *previous.history] if previous else []
    history = [v for v in history if v != version][:history_limit]
    if isinstance(manifest, Manifest):
        image_digest, commit = manifest.image_digest, manifest.commit
    else:
        image_digest, commit = manifest.get("image_digest"), manifest.get("commit")
    return Pointer(version, version_prefix(prefix, version), switched_at, switch_id, image_digest, commit, history)


# ====================================================================================== signatures (issue 38)
# Two signed statements, each a DSSE envelope (securesystemslib.dsse.Envelope) with an ed25519 key:
#
#     P/bundles/<version>/bundle-manifest.dsse.json   payload {"environment", "version", "manifest_sha256"}
#     P/current.json  field "envelope"                payload {"environment", "prefix", "version",
#                                                              "manifest_sha256", "switched_at", "switch_id",
#                                                              "ledger_entry"}
#
# The manifest statement lets a worker that fetches a pinned version check it without the pointer; the
# pointer statement says which version is live. Both name the environment and the sha256 of the exact
# manifest bytes, so a valid signature made for another environment or over another manifest (a replay) is
# refused. The allowed public keys are the environment's (`signing.allowed_keys`, two during a rotation);
# each is the 64 hex digits of a raw ed25519 public key; its key id is securesystemslib's default key id.
MANIFEST_SIGNATURE = "bundle-manifest.dsse.json"
MANIFEST_PAYLOAD_TYPE = "application/vnd.ml-platform.bundle-manifest.v1+json"
POINTER_PAYLOAD_TYPE = "application/vnd.ml-platform.bundle-pointer.v1+json"
_HEX_KEY = re.compile(r"^[0-9a-f]{64}$")

# What the operator package in this image serves: the pipeline format versions whose rendered DAGs it runs.
# A bundle's manifest records the formats its DAGs were rendered from and the ml_platform version they were
# rendered for; the bundle class refuses a version this image cannot serve.
SERVED_PIPELINE_FORMATS: tuple[int, ...] = (1, 2)


class TrustFault(Exception):
    """A version may not be served: the message says why (unsigned, tampered, replayed, key not allowed)."""


# ----------------------------------------------------------------------------------------------- keys
def key_problem(text: str) -> str | None:
    """Why `text` is not an allowed-key entry (64 hex digits of a raw ed25519 public key), or None."""
    if not isinstance(text, str) or not _HEX_KEY.match(text.strip().lower()):
        return "must be 64 hex digits: a raw ed25519 public key (make signing-key prints one)"
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        Ed25519PublicKey.from_public_bytes(bytes.fromhex(text.strip()))
    except ValueError as exc:
        return f"is not an ed25519 public key ({exc})"
    return None


def public_key(hex_key: str):
    """The securesystemslib key (SSlibKey, ed25519, its default key id) of an allowed-key entry."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from securesystemslib.signer import SSlibKey

    return SSlibKey.from_crypto(Ed25519PublicKey.from_public_bytes(bytes.fromhex(hex_key.strip())))


def key_id(hex_key: str) -> str:
    return public_key(hex_key).keyid


def load_signer(pem: bytes):
    """A CryptoSigner for an ed25519 private key (PEM, PKCS#8), its public key with the default key id.
    ValueError when the bytes are not such a key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from securesystemslib.signer import CryptoSigner, SSlibKey

    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM private key without a password ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"an ed25519 key is needed, this is {type(key).__name__.lstrip('_')}")  # noqa: TRY004
    return CryptoSigner(key, SSlibKey.from_crypto(key.public_key()))


def public_hex(signer) -> str:
    return signer.public_key.keyval["public"]


# ----------------------------------------------------------------------------------------- statements
def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(doc: dict) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def sign(signer, payload_type: str, statement: dict) -> dict:
    """A DSSE envelope (as a dict) over the canonical JSON of `statement`."""
    from securesystemslib.dsse import Envelope

    env = Envelope(_canonical(statement), payload_type, {})
    env.sign(signer)
    return env.to_dict()


def manifest_signature_key(prefix: str, version: str) -> str:
    return join(version_prefix(prefix, version), MANIFEST_SIGNATURE)


def manifest_statement(environment: str, version: str, manifest_raw: bytes) -> dict:
    return {"environment": environment, "version": version, "manifest_sha256": sha256_hex(manifest_raw)}


def envelope_bytes(envelope: dict) -> bytes:
    return (json.dumps(envelope, indent=2, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class Verified:
    statement: dict
    key_id: str


def verify(envelope: dict | None, payload_type: str, allowed: list[str], what: str) -> Verified:
    """The statement of a DSSE envelope signed by one of `allowed` (hex ed25519 public keys); TrustFault
    naming why otherwise."""
    from securesystemslib import exceptions
    from securesystemslib.dsse import Envelope

    if envelope is None:
        raise TrustFault(f"{what} is unsigned and this environment requires signatures")
    try:
        env = Envelope.from_dict(json.loads(json.dumps(envelope)))  # from_dict changes its argument
    except Exception as exc:  # noqa: BLE001 - any malformed envelope is one reason
        raise TrustFault(f"{what}'s signature envelope is malformed ({type(exc).__name__})") from None
    if env.payload_type != payload_type:
        raise TrustFault(f"{what}'s signature is over a {env.payload_type!r}, not a {payload_type!r} (replayed)")
    keys = [public_key(k) for k in allowed]
    if not keys:
        raise TrustFault(f"{what} is signed but this environment lists no allowed keys")
    ids = {k.keyid for k in keys}
    if not ids & set(env.signatures):
        signed_by = ", ".join(sorted(k[:12] for k in env.signatures)) or "nobody"
        raise TrustFault(f"{what} is signed by key {signed_by}, which is not an allowed key here")
    try:
        accepted = env.verify(keys, 1)
    except (exceptions.VerificationError, ValueError):
        raise TrustFault(f"{what}'s signature does not verify (tampered after signing)") from None
    try:
        statement = json.loads(env.payload)
    except ValueError:
        raise TrustFault(f"{what}'s signed payload is not JSON") from None
    if not isinstance(statement, dict):
        raise TrustFault(f"{what}'s signed payload is not a statement")
    return Verified(statement, next(iter(accepted)))


def check_manifest(envelope: dict | None, allowed: list[str], *, environment: str, version: str,
                   manifest_raw: bytes, pointer_statement: dict | None = None) -> Verified:
    """The manifest of `version` as signed for `environment` (and, when given, as the signed pointer names it)."""
    v = verify(envelope, MANIFEST_PAYLOAD_TYPE, allowed, f"{version}'s manifest")
    s = v.statement
    if s.get("environment") != environment:
        raise TrustFault(f"{version}'s manifest signature was made for environment {s.get('environment')!r}, "
                         f"not {environment!r} (replayed)")
    if s.get("version") != version:
        raise TrustFault(f"{version}'s manifest signature names version {s.get('version')!r} (replayed)")
    digest = sha256_hex(manifest_raw)
    if s.get("manifest_sha256") != digest:
        raise TrustFault(f"{version}'s manifest signature is over another manifest (sha256 "
                         f"{str(s.get('manifest_sha256'))[:12]}..., the stored one has {digest[:12]}...; "
                         f"replayed or tampered)")
    if pointer_statement is not None and pointer_statement.get("manifest_sha256") != digest:
        raise TrustFault(f"the signed pointer names another manifest for {version} (sha256 "
                         f"{str(pointer_statement.get('manifest_sha256'))[:12]}...; replayed or tampered)")
    return v


def check_pointer(pointer: dict, allowed: list[str], *, environment: str) -> Verified:
    """The signed pointer statement of a current.json read from the store."""
    v = verify(pointer.get("envelope"), POINTER_PAYLOAD_TYPE, allowed, f"the pointer to {pointer.get('version')}")
    s = v.statement
    if s.get("environment") != environment:
        raise TrustFault(f"the pointer to {pointer.get('version')} was signed for environment "
                         f"{s.get('environment')!r}, not {environment!r} (replayed)")
    if s.get("version") != pointer.get("version"):
        raise TrustFault(f"the pointer names {pointer.get('version')} but its signature names "
                         f"{s.get('version')} (tampered or replayed)")
    return v


# ------------------------------------------------------------------------------- what the image serves
def _vtuple(v: str) -> tuple[int, ...]:
    out = []
    for part in str(v).split("."):
        digits = re.match(r"\d+", part)
        out.append(int(digits.group()) if digits else 0)
    return tuple(out)


def image_problem(manifest: dict, *, served_formats, ml_platform_version: str) -> str | None:
    """Why an image (its operator package version and the pipeline formats it serves) cannot serve a
    bundle's manifest, or None. A manifest without the fields (older deploys) is served as before."""
    need = manifest.get("pipeline_formats") or []
    missing = sorted(set(need) - set(served_formats))
    if missing:
        return (f"its DAGs were rendered from pipeline format {', '.join(map(str, missing))}, which this image's "
                f"ml_platform {ml_platform_version} does not serve (it serves {', '.join(map(str, served_formats))}); "
                f"promote an image that does first")
    want = manifest.get("ml_platform_version")
    if want and _vtuple(want) > _vtuple(ml_platform_version):
        return (f"its DAGs were rendered for ml_platform {want}, this image has {ml_platform_version}; promote an "
                f"image with ml_platform >= {want} first")
    return None


def this_image_problem(manifest: dict) -> str | None:
    """image_problem for the image this code runs in."""
    from . import __version__

    return image_problem(manifest, served_formats=SERVED_PIPELINE_FORMATS, ml_platform_version=__version__)


# ------------------------------------------------------------------------------------ archive (#34)
# Layout under a version's prefix, beside the version's individual files (which stay the source of truth):
#   P/bundles/<version>/bundle.tar.gz  every file of the manifest, nothing else; written before the manifest,
#                                      so a version whose manifest names an archive has it
# The archive is deterministic: members sorted by path, regular files only, mode 0644, uid/gid 0, no owner
# names, mtime 0, PAX format; gzip with mtime 0 and no file name: the same files give the same bytes. A
# reader checks the archive's sha256 against the manifest's "archive" entry, takes only regular-file members
# the manifest names (each once), and still checks every file's sha256 against the manifest after
# extraction. A version deployed before archives existed has no "archive" entry: it is read file by file.
#
# Conditional pointer reads: a reader keeps the ETag of the pointer it last acted on (in memory and in
# POINTER_STATE under its bundle folder, with the version it named) and reads the pointer with
# If-None-Match: when nothing changed the store answers 304 with no body. The ETag is kept only once the
# version it named is served, so a version that failed to fetch is read and tried again next time.
ARCHIVE = "bundle.tar.gz"
POINTER_STATE = "live-pointer.json"  # in the bundle's base dir: {"version", "etag"} of the pointer acted on


class ArchiveError(ValueError):
    """The archive does not match its manifest (the reader falls back to the version's individual files)."""


def build_archive(files: dict[str, bytes]) -> bytes:
    """The deterministic archive of `files` (path -> content)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(files):
            data = files[rel]
            info = tarfile.TarInfo(rel)
            info.size, info.mtime, info.mode, info.type = len(data), 0, 0o644, tarfile.REGTYPE
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def archive_entry(data: bytes) -> dict:
    """The manifest's "archive" entry for these archive bytes."""
    return {"name": ARCHIVE, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def read_archive(data: bytes, entry: dict, names: set[str]) -> dict[str, bytes]:
    """The files of an archive whose manifest entry is `entry` and whose manifest names exactly `names`.
    ArchiveError when the archive is not the one the manifest names or holds anything else. The caller
    still checks each file's sha256."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.get("sha256"):
        raise ArchiveError(f"{ARCHIVE} has sha256 {digest[:12]}..., the manifest says "
                           f"{str(entry.get('sha256'))[:12]}...")
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:
                if not member.isreg():
                    raise ArchiveError(f"{ARCHIVE} holds {member.name!r}, which is not a regular file")
                if member.name not in names or member.name in out or safe_rel(member.name) is None:
                    raise ArchiveError(f"{ARCHIVE} holds {member.name!r}, which the manifest does not name once")
                f = tar.extractfile(member)
                out[member.name] = f.read() if f else b""
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ArchiveError(f"{ARCHIVE} cannot be read ({type(exc).__name__}: {exc})") from None
    missing = names - out.keys()
    if missing:
        raise ArchiveError(f"{ARCHIVE} lacks {len(missing)} file(s) of the manifest, e.g. {sorted(missing)[0]}")
    return out


def archive_key(prefix: str, version: str) -> str:
    return join(version_prefix(prefix, version), ARCHIVE)


# ------------------------------------------------------------------------------------------ deploy ledger
# One entry per deploy, rollback, promote and gc (platformctl.deploy.ledger writes and reads them; the bundle
# class never does). Each is its own immutable object, created with If-None-Match: * :
#   P/ledger/<rank>-<entry>.json        written before the change
#   P/ledger/<rank>-<entry>.done.json   written after it: the entry's fields again, with "result" and
#                                       "completed_at" (one read gives a completed entry)
# <entry> is e-<UTC time to the millisecond>-<6 hex>; <rank> is LEDGER_RANK_DIGITS digits, 10**13 - 1 minus
# that time in ms since the epoch: keys list (lexicographically) newest first, each entry's .done object
# just before it (".done.json" < ".json"), so the newest N entries are the first ~2N keys of a listing.
# Entries written before ranks existed (the ledger's first layout) are P/ledger/<entry>.json and
# P/ledger/<entry>.done.json (result and time only): read, never written; they list after every ranked key.
LEDGER = "ledger"
LEDGER_RANK_DIGITS = 13
LEDGER_ENTRY_RE = re.compile(r"^e-(\d{8}T\d{6})(\d{3})Z-[0-9a-f]{6}$")
LEDGER_KEY_RE = re.compile(r"^(?:(\d{13})-)?(e-\d{8}T\d{9}Z-[0-9a-f]{6})(\.done)?\.json$")  # rank, entry, done


def ledger_prefix(prefix: str) -> str:
    """The key prefix the ledger's objects are under (no trailing slash)."""
    return join(prefix, LEDGER)


def ledger_rank(entry: str) -> str:
    """The entry's rank: 10**13 - 1 minus its time in ms since the epoch (FormatError for a malformed id)."""
    m = LEDGER_ENTRY_RE.match(entry)
    if not m:
        raise FormatError(f"{entry!r} is not a ledger entry id (e-<UTC time>-<6 hex>)")
    t = datetime.strptime(m[1], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    ms = int(t.timestamp()) * 1000 + int(m[2])
    return f"{10 ** LEDGER_RANK_DIGITS - 1 - ms:0{LEDGER_RANK_DIGITS}d}"


def ledger_key(prefix: str, entry: str, done: bool = False, ranked: bool = True) -> str:
    """The entry's object (done: its completion); ranked=False: where entries before ranks are."""
    name = f"{ledger_rank(entry)}-{entry}" if ranked else entry
    return join(ledger_prefix(prefix), f"{name}{'.done' if done else ''}.json")
