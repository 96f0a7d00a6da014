"""The image version from git: release tag vX.Y.Z, else X.Y.Z-dev.N+g<sha>, '.dirty' when uncommitted."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from . import git


@dataclass(frozen=True)
class VersionInfo:
    version: str
    revision: str  # full commit sha, or "unknown"
    dirty: bool
    created: str  # commit time (reproducible), or now for a dirty tree

    @property
    def short(self) -> str:
        return self.revision[:7]

    @property
    def tag(self) -> str:
        """The version as a valid OCI tag ('+' is not allowed in tags)."""
        return self.version.replace("+", "-")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def git_version(root: Path) -> VersionInfo:
    rev = git.head(root)
    if not rev:
        return VersionInfo("0.0.0-dev.0+unknown", "unknown", True, _now())
    dirty = git.dirty(root)
    desc = git.output(root, "describe", "--tags", "--match", "v[0-9]*", "--long")
    if desc:
        tag, n, _ = desc.rsplit("-", 2)
        base, count = tag[1:], int(n)
    else:
        base, count = "0.0.0", int(git.output(root, "rev-list", "--count", "HEAD") or 0)
    version = base if count == 0 else f"{base}-dev.{count}+g{rev[:7]}"
    if dirty:
        version += (".dirty" if "+" in version else f"+g{rev[:7]}.dirty")
    ts = git.output(root, "show", "-s", "--format=%ct", "HEAD")
    created = datetime.fromtimestamp(int(ts), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if ts and not dirty else _now()
    return VersionInfo(version, rev, dirty, created)


def image_version(root: Path, configured: str | None = None) -> VersionInfo:
    """git_version, or the configured version (image.version) when set; a dirty tree stays marked."""
    v = git_version(root)
    if not configured:
        return v
    return replace(v, version=configured + (f"+g{v.short}.dirty" if v.dirty else ""))


_SCP = re.compile(r"^(?:[\w.-]+@)?([\w.-]+):(?!//)(.+)$")  # git@host:org/repo.git


def _remote(root: Path) -> str | None:
    """The remote the source lives at: the current branch's upstream remote, else origin, else the only one
    (a clone whose remote is not called origin, a CI checkout of a branch that tracks another remote)."""
    branch = git.output(root, "symbolic-ref", "--quiet", "--short", "HEAD")
    upstream = git.output(root, "config", "--get", f"branch.{branch}.remote") if branch else None
    if upstream and upstream != ".":
        return upstream
    names = (git.output(root, "remote") or "").split()
    return "origin" if "origin" in names else names[0] if len(names) == 1 else None


def source_url(root: Path) -> str:
    """The repository's URL for org.opencontainers.image.source: the remote's URL (_remote) as an https URL
    without credentials (`git@host:org/repo.git` -> `https://host/org/repo`), or "" when there is no
    remote or it is a local path."""
    remote = _remote(root)
    raw = (git.output(root, "config", "--get", f"remote.{remote}.url") if remote else None) or ""
    if m := _SCP.match(raw):
        raw = f"https://{m.group(1)}/{m.group(2)}"
    parts = urlsplit(raw)
    if parts.scheme not in ("https", "http", "ssh", "git") or not parts.hostname:
        return ""
    host = parts.hostname + (f":{parts.port}" if parts.port and parts.scheme in ("https", "http") else "")
    path = parts.path[:-4] if parts.path.endswith(".git") else parts.path
    scheme = parts.scheme if parts.scheme in ("https", "http") else "https"
    return urlunsplit((scheme, host, path.rstrip("/"), "", ""))
