"""One archive per bundle version, and the rules for reading the pointer conditionally. No Airflow here:
`make deploy` (platformctl.deploy) writes with it, the in-image bundle (ml_platform.bundle) reads with it.

Layout under a version's prefix (beside the version's individual files, which stay the source of truth)::

    P/bundles/<version>/bundle.tar.gz          every file of the manifest, nothing else (written before the
                                               manifest, so a version with a manifest has its archive)
    P/bundles/<version>/bundle-manifest.json   "archive": {"name", "sha256", "size"} names it

The archive is deterministic: members sorted by path, regular files only, mode 0644, uid/gid 0, no
owner names, mtime 0, PAX format; gzip with mtime 0 and no file name. The same files give the same bytes.
A reader checks the archive's sha256 against the manifest, takes only regular-file members the manifest
names (each once, each path safe), and still checks every file's sha256 against the manifest after
extraction. A version deployed before archives existed has no "archive" entry: it is read file by file.

The pointer (P/current.json) is read with the ETag of the last pointer this machine acted on
(If-None-Match): when nothing changed, the store answers 304 with no body. The ETag is remembered only
once the version it named is served here, so a version that failed to fetch is read and tried again on
the next refresh.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import PurePosixPath

ARCHIVE = "bundle.tar.gz"
POINTER_STATE = "live-pointer.json"  # in the bundle's base dir: {"version", "etag"} of the pointer acted on


class ArchiveError(ValueError):
    """The archive does not match its manifest (the reader falls back to the version's individual files)."""


def safe_rel(rel: str) -> PurePosixPath | None:
    """The path as a relative POSIX path inside the version, or None when it is absolute or escapes."""
    pure = PurePosixPath(rel)
    if pure.is_absolute() or not pure.parts or ".." in pure.parts or "." in rel.split("/") or "\\" in rel:
        return None
    return pure


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
