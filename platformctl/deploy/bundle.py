"""A DAG bundle: the files an Airflow instance reads (rendered DAGs, pipeline YAMLs, the flavor catalog).

Its version is a content address: the same files for the same image give the same version, so a
redeploy of an unchanged bundle is recognised without uploading anything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from ml_platform.bundle_format import (MANIFEST, VERSION_RE, FileEntry, Manifest, archive_entry, build_archive, to_bytes,
                                       version_hash)

from .store import md5_hex

DEFAULT_INCLUDE = ("dags", "pipelines", "flavors.yaml")
__all__ = ["MANIFEST", "VERSION_RE", "Bundle", "BundleFile", "collect", "manifest_bytes"]


@dataclass(frozen=True)
class BundleFile:
    rel: str
    sha256: str
    md5: str
    size: int
    data: bytes = field(repr=False, compare=False)


@dataclass(frozen=True)
class Bundle:
    files: dict[str, BundleFile]
    image_digest: str | None
    commit: str | None

    @property
    def version(self) -> str:
        return version_hash({rel: f.sha256 for rel, f in self.files.items()}, self.image_digest)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files.values())

    def archive(self) -> bytes:
        """The version's deterministic archive (bundle_format.build_archive): one GET per machine."""
        return build_archive({rel: f.data for rel, f in self.files.items()})

    def manifest(self, created: str, archive: bytes | None = None) -> dict:
        out = Manifest.build({rel: FileEntry(f.sha256, f.size) for rel, f in self.files.items()},
                             image_digest=self.image_digest, commit=self.commit, created=created).to_dict()
        if archive is not None:  # not part of the version's hash: the files are
            out["archive"] = archive_entry(archive)
        return out


def _skip(p: Path) -> bool:
    return "__pycache__" in p.parts or p.suffix == ".pyc" or p.name.startswith(".#")


def collect(root: Path, include: tuple[str, ...] = DEFAULT_INCLUDE, *, image_digest: str | None = None,
            commit: str | None = None) -> Bundle:
    files: dict[str, BundleFile] = {}
    for item in include:
        base = root / item
        paths = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []
        for p in paths:
            if _skip(p):
                continue
            data = p.read_bytes()
            rel = p.relative_to(root).as_posix()
            files[rel] = BundleFile(rel, hashlib.sha256(data).hexdigest(), md5_hex(data), len(data), data)
    return Bundle(files, image_digest, commit)


manifest_bytes = to_bytes  # every JSON object in the store (manifest, pointer, lock) is written this way
