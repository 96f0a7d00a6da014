"""Changing a deployed version in its store the way an attacker with write access would: the file itself,
the version's archive rebuilt with the changed file, and the manifest's archive entry (its sha256 and size:
they are not part of the version's hash). Only each file's sha256 in the manifest still says what the
file was, and the bundle must refuse the version on that."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable

from ml_platform.bundle_format import ARCHIVE, MANIFEST, archive_entry, build_archive


def tamper(get: Callable[[str], bytes | None], put: Callable[[str, bytes], None], vprefix: str, rel: str,
           data: bytes) -> None:
    """Replace `rel` of the version under `vprefix` by `data`, in its file and in its archive."""
    put(f"{vprefix}/{rel}", data)
    manifest = json.loads(get(f"{vprefix}/{MANIFEST}"))
    if "archive" not in manifest:
        return
    files = {}
    with tarfile.open(fileobj=io.BytesIO(get(f"{vprefix}/{ARCHIVE}")), mode="r:gz") as tar:
        for m in tar:
            files[m.name] = tar.extractfile(m).read()
    files[rel] = data
    archive = build_archive(files)
    put(f"{vprefix}/{ARCHIVE}", archive)
    manifest["archive"] = archive_entry(archive)
    put(f"{vprefix}/{MANIFEST}", (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
