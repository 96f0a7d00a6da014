"""A DAG bundle: the files an Airflow instance reads (rendered DAGs, pipeline YAMLs, the flavor catalog).

Its version is a content address: the same files for the same image give the same version, so a
redeploy of an unchanged bundle is recognised without uploading anything.
"""

from __future__ import annotations

import hashlib
import re
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
    # what the DAGs were rendered for (issue 38): {"ml_platform_version": "0.1.0", "pipeline_formats": [1, 2]}
    needs: dict = field(default_factory=dict, compare=False)

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
        return {**out, **self.needs}  # what the DAGs were rendered for (issue 38): extra keys


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
    return Bundle(files, image_digest, commit, needs_of(root, files))


def needs_of(root: Path, files: dict[str, BundleFile]) -> dict:
    """What the bundle's DAGs were rendered for: the repository's ml_platform version and the format versions
    of its pipelines (a file without `version` is format 1)."""
    from ml_platform.yamlsafe import YamlFileError, loads

    formats = set()
    for rel, f in files.items():
        if rel.startswith("pipelines/") and rel.endswith((".yaml", ".yml")):
            try:
                doc, _ = loads(f.data)
            except YamlFileError:
                continue  # validated before deploy; an unreadable file names no format
            v = doc.get("version", 1) if isinstance(doc, dict) else 1
            formats.add(v if isinstance(v, int) else 1)
    return {"ml_platform_version": ml_platform_version(root), "pipeline_formats": sorted(formats)}


_VERSION_LINE = re.compile(r"^__version__\s*=\s*[\"']([^\"']+)[\"']", re.M)


def ml_platform_version(root: Path) -> str:
    """The operator package version in this repository (operators/ml_platform), else the one imported."""
    init = root / "operators" / "ml_platform" / "__init__.py"
    m = _VERSION_LINE.search(init.read_text()) if init.is_file() else None
    if m:
        return m.group(1)
    from ml_platform import __version__

    return __version__


manifest_bytes = to_bytes  # every JSON object in the store (manifest, pointer, lock) is written this way
