"""What an environment runs now, read from its bundle store and its registry (never from local files).

Read-only: every store access is BundleStore.get (store.py's public interface); every registry access is
skopeo inspect / list-tags. `make plan`, `make status` and `make diff` are built on these functions.
"""

from __future__ import annotations

import difflib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..config import PlatformConfig
from ..environments import ENV_DIR, Environment, load_environment
from ..errors import ConfigError
from ..registry.refs import SEMVER, parse_semver
from ml_platform.bundle_format import MANIFEST, Pointer, join as _join, pointer_key

from .store import BundleStore, open_store  # noqa: F401 - the one factory (store.py), also reachable here

REVISION_LABEL = "org.opencontainers.image.revision"
VERSION_LABEL = "org.opencontainers.image.version"
LOCK_LABEL = "io.ml-platform.lock.fingerprint"
PYTHON_LABEL = "io.ml-platform.python.version"


def environment_names(root: Path) -> list[str]:
    """Every shipped environment (environments/*.yaml), then the built-in `local`."""
    names = sorted(p.stem for p in (root / ENV_DIR).glob("*.yaml"))
    return names + ([] if "local" in names else ["local"])


def resolve_environment(root: Path, name: str) -> Environment:
    """load_environment, with a did-you-mean for an unknown name."""
    known = environment_names(root)
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = (f"did you mean '{close[0]}'? " if close else "") + f"known: {', '.join(known)}"
        raise ConfigError(f"unknown environment '{name}'", hint, where=f"{ENV_DIR}/{name}.yaml")
    return load_environment(root, name)


@dataclass
class LiveBundle:
    """The bundle an environment's Airflow follows: its pointer and its manifest."""

    version: str
    prefix: str
    switched_at: str | None
    image_digest: str | None
    commit: str | None
    created: str | None
    files: dict[str, dict]  # rel -> {"sha256", "size"}
    history: list[str] = field(default_factory=list)


def read_live(store: BundleStore, prefix: str) -> LiveBundle | None:
    """The live bundle under prefix, or None when nothing was ever deployed there. Reads two objects."""
    raw = store.get(pointer_key(prefix))
    if not raw:
        return None
    raw_ptr = json.loads(raw)
    ptr = Pointer.from_dict(raw_ptr, prefix)
    man = json.loads(store.get(_join(ptr.prefix, MANIFEST)) or b"{}")
    return LiveBundle(version=ptr.version, prefix=ptr.prefix, switched_at=ptr.switched_at,
                      image_digest=raw_ptr.get("image_digest", man.get("image_digest")),
                      commit=raw_ptr.get("commit", man.get("commit")), created=man.get("created"),
                      files=man.get("files", {}), history=list(ptr.history))


def read_live_files(store: BundleStore, live: LiveBundle, rels: list[str]) -> dict[str, bytes]:
    """Some files of the live bundle (e.g. its pipelines), fetched in parallel."""
    def get(rel: str) -> tuple[str, bytes | None]:
        return rel, store.get(_join(live.prefix, rel))

    with ThreadPoolExecutor(max_workers=8) as pool:
        return {rel: data for rel, data in pool.map(get, rels) if data is not None}


def live_job_uses(store: BundleStore, live: LiveBundle) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """(pipeline file, job) -> (flavor, image) of the live bundle, from its own pipeline YAMLs."""
    from ..pipelines.render import job_views
    from ..pipelines.validate import check

    rels = [r for r in live.files if r.startswith("pipelines/") and r.endswith((".yaml", ".yml"))]
    data = read_live_files(store, live, [*rels, "flavors.yaml"])
    try:
        flavors = list((yaml.safe_load(data.get("flavors.yaml", b"")) or {}).get("flavors", {}))
    except yaml.YAMLError:
        flavors = []
    out: dict[tuple[str, str], tuple[str | None, str | None]] = {}
    for rel in rels:
        if rel not in data:
            continue
        c = check(rel, data[rel], flavors)
        if c.pipeline is not None:
            for j in job_views(c.pipeline):
                out[(rel, j.name)] = (j.resource_flavor, j.docker_image)
    return out


# ------------------------------------------------------------------------------------------ registry
@dataclass
class ImageInfo:
    ref: str
    digest: str
    revision: str | None
    version: str | None
    lock_fingerprint: str | None
    python: str | None


def env_repository(env: Environment, cfg: PlatformConfig) -> str:
    return env.registry.repository or cfg.registry.repository


def own_repository(env: Environment) -> bool:
    """An environment with a repository of its own gets images only through make promote."""
    return env.registry.repository is not None


@dataclass
class RegistryView:
    """An environment's repository: the release tags in it and the images they point at."""

    repository: str
    releases: dict[str, ImageInfo]  # X.Y.Z -> image (the newest ones, when not complete)
    complete: bool = True  # every release tag was inspected

    def newest_release(self) -> str | None:
        return max(self.releases, key=parse_semver) if self.releases else None

    def releases_of(self, digest: str | None) -> list[str]:
        return sorted((v for v, i in self.releases.items() if i.digest == digest), key=parse_semver)


def _info(ref: str, data: dict) -> ImageInfo:
    labels = data.get("labels") or {}
    return ImageInfo(ref, data["digest"], labels.get(REVISION_LABEL), labels.get(VERSION_LABEL),
                     labels.get(LOCK_LABEL), labels.get(PYTHON_LABEL))


def read_registry(skopeo, repository: str, *, want: set[str] | None = None, workers: int = 8,
                  max_rounds: int = 2) -> RegistryView:
    """The repository's release tags (X.Y.Z) and their images, newest first.

    With `want` (digests), the tags are inspected newest first, `workers` at a time, until every wanted
    digest has been seen, for at most `max_rounds` rounds: the release a live image is, is nearly always among
    the newest, so a repository with many releases costs one round of inspects instead of one per release.
    Without `want`, every release.
    """
    releases = sorted((t for t in skopeo.tags(repository) if SEMVER.match(t)), key=parse_semver, reverse=True)

    def one(tag: str) -> tuple[str, dict | None]:
        return tag, skopeo.inspect(f"{repository}:{tag}")

    found: dict[str, ImageInfo] = {}
    seen = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i in range(0, len(releases), workers):
            for t, d in pool.map(one, releases[i:i + workers]):
                if d:
                    found[t] = _info(f"{repository}:{t}", d)
            seen = i + workers
            if want is not None and (want <= {f.digest for f in found.values()} or seen >= workers * max_rounds):
                break
    return RegistryView(repository, found, complete=seen >= len(releases))


def inspect_digest(skopeo, repository: str, digest: str) -> ImageInfo | None:
    d = skopeo.inspect(f"{repository}@{digest}")
    return _info(f"{repository}@{digest}", d) if d else None
