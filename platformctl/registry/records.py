"""Build and release records on disk: build/build-record.json, releases/<X.Y.Z>.json, CHANGELOG."""

from __future__ import annotations

import json
from pathlib import Path

from .. import git
from ..record import BuildRecord
from ..lock.diff import diff_pins
from ..lock.files import read_pins
from ..errors import ReleaseRefused
from .refs import parse_semver

RELEASES = Path("releases")
LOCK_LABEL = "io.ml-platform.lock.fingerprint"
PROMOTION = "deploy/{env}/image.json"  # written by make promote, read by make deploy


def load_build(root: Path) -> BuildRecord:
    rec = BuildRecord.load(root)
    if rec is None:
        raise ReleaseRefused("no build record (build/build-record.json)", "run make build first")
    return rec


def assert_shippable(root: Path, rec: BuildRecord) -> None:
    """Only a tested build of a clean tree at HEAD is pushed or released."""
    if rec.dirty:
        raise ReleaseRefused(f"build {rec.version} was made from uncommitted changes",
                             "commit them, run make build, then push")
    head = git.head(root)
    if head and rec.revision != head and not _only_release_records_since(root, rec.revision or ""):
        raise ReleaseRefused(f"the build is from commit {(rec.revision or '?')[:7]} but HEAD is {head[:7]}",
                             "run make build for the current commit")
    if not rec.tested:
        raise ReleaseRefused(f"build {rec.version} has not passed the image tests",
                             "run make build (without --no-test) and fix what fails")


def _only_release_records_since(root: Path, revision: str) -> bool:
    """True when every commit since `revision` only touched releases/ (release commits change no input)."""
    if not revision:
        return False
    ancestor = git.is_ancestor(root, revision)
    changed = git.output(root, "diff", "--name-only", revision, "HEAD") or ""
    return ancestor and all(f.startswith(f"{RELEASES}/") for f in changed.splitlines())


def release_path(root: Path, version: str) -> Path:
    return root / RELEASES / f"{version}.json"


def load_release(root: Path, version: str) -> dict:
    path = release_path(root, version)
    if not path.exists():
        raise ReleaseRefused(f"there is no release {version} ({path.relative_to(root)} is missing)",
                             f"make release VERSION={version} first")
    return json.loads(path.read_text())


def previous_release(root: Path, version: str) -> dict | None:
    v = parse_semver(version)
    best = None
    for p in (root / RELEASES).glob("*.json"):
        try:
            pv = parse_semver(p.stem)
        except ValueError:
            continue
        if pv < v and (best is None or pv > best[0]):
            best = (pv, p)
    return json.loads(best[1].read_text()) if best else None


def dependency_changes(root: Path, prev: dict | None, lock_files: list[str]) -> list[str]:
    """Lines describing pin changes of the image's locks since the previous release's commit."""
    out: list[str] = []
    for rel in lock_files:
        new = read_pins((root / rel).read_text())
        old_text = (git.output(root, "show", f"{prev['commit']}:{rel}") or "") if prev else ""
        d = diff_pins(read_pins(old_text) if old_text else {}, new)
        if prev is None:
            out.append(f"- `{rel}`: first release, {len(new)} pins")
        elif not d.empty():
            out.append(f"- `{rel}`: {d.summary(limit=200).strip()}".replace("\n", "\n  "))
    return out or ["- no dependency changes"]
