"""`make push`, `make release`, `make promote` as services: typed results.

    push     -> PushResult     the build pushed, its digest checked at every tag, the supply chain attached
    release  -> ReleaseResult  the pushed build tagged X.Y.Z (and the floating tags), recorded, git-tagged
    promote  -> PromoteResult  release X.Y.Z copied by digest to an environment's repository, with a ledger entry

Progress lines go through `echo` as the work happens; the summary a command ends with is the CLI's, from the
result. releases/<X.Y.Z>.json and deploy/<env>/image.json are the results' records (make deploy reads them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import git
from ..config import PlatformConfig
from ..deploy.publish import record_promotion
from ..deploy.store import open_store
from ..engine import ContainerEngine, connect
from ..environments import Environment, load_environment
from ..errors import PlatformError, RegistryError, ReleaseRefused
from ..executors import check_project as check_executors
from ..lock.core import REQ_DIR, assert_fresh, lock_filename
from ..output import say
from ..record import CACHE_TAG, IMAGE_SETS
from ..registry.auth import Credentials, authfile
from ..registry.push import Progress, push_image
from ..registry.push import PushResult as Upload
from ..registry.records import (LOCK_LABEL, PROMOTION, RELEASES, assert_shippable, dependency_changes, load_build,
                                load_release, previous_release, release_path)
from ..registry.refs import SEMVER, build_tags, release_tags
from ..registry.skopeo import Skopeo
from ..supply import service as supply

Echo = Callable[[str], None]
SERVES = "io.ml-platform.serves"  # what the image serves (issue 38): make deploy checks it


def _record(result: ReleaseResult | PromoteResult, *, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """A result as its JSON record (releases/<X.Y.Z>.json, deploy/<env>/image.json): `serves` only when the
    image names what it serves, as before the results were typed."""
    out = {k: v for k, v in asdict(result).items() if k not in leave_out}
    if out.get("serves") is None:
        out.pop("serves", None)
    return out


@dataclass(frozen=True)
class PushResult:
    repository: str
    digest: str  # what the registry serves at every tag pushed
    tags: tuple[str, ...]
    upload: Upload  # bytes and layers uploaded or reused, seconds
    supply: dict[str, Any]  # the SBOM, provenance and signature attached to the digest, and their seconds


@dataclass(frozen=True)
class ReleaseResult:
    """releases/<version>.json (as written: _record)."""
    version: str
    repository: str
    digest: str
    image: str  # repository@digest
    tags: tuple[str, ...]
    lock_fingerprint: str | None
    commit: str | None
    built_version: str | None
    airflow_version: str | None
    python_version: str | None
    date: str
    previous: str | None  # the release before this one
    serves: str | None = None

    @property
    def record_file(self) -> str:
        return f"{RELEASES}/{self.version}.json"


@dataclass(frozen=True)
class PromoteResult:
    """deploy/<env>/image.json (as written: _record, without `ledger` and `already`)."""
    environment: str
    version: str
    repository: str
    digest: str
    source: str  # the release's repository@digest
    lock_fingerprint: str | None
    commit: str | None
    promoted_at: str
    serves: str | None = None
    already: bool = False  # the environment's repository had the tag at this digest already
    ledger: str = ""  # the ledger entry written around the promotion, or why none was

    @property
    def record_file(self) -> str:
        return PROMOTION.format(env=self.environment)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n} bytes"


def _skopeo(cfg: PlatformConfig, auth: str | None, echo=say) -> Skopeo:
    return Skopeo(authfile=auth, insecure_hosts=set(cfg.registry.insecure_hosts), attempts=cfg.registry.attempts,
                  echo=echo)


# ------------------------------------------------------------------------------------------ push
def push(root: Path, cfg: PlatformConfig, creds: Credentials | None, *, echo: Echo = say,
         progress: Progress | None = None, engine: ContainerEngine | None = None) -> PushResult:
    rec = load_build(root)
    assert_shippable(root, rec)
    repo = cfg.registry.repository
    tags = build_tags(rec.version_tag, rec.short_sha)
    if rec.inputs_tag:
        tags.append(rec.inputs_tag)  # lets a later build with the same inputs reuse this image
    if cfg.image.build_cache == "registry":
        tags.append(CACHE_TAG)  # moving: the next build anywhere reads BuildKit's cache (inline) from it
    echo(f"pushing {rec.image} to {repo} as {', '.join(tags)}")
    engine = engine or connect(cfg.image.docker, cfg.image.engine)
    # issue 37: the signing key is unlocked and the SBOM made before anything is uploaded
    with supply.push_trust(root, cfg, rec, engine, echo) as trust:
        res = push_image(rec.image_id, repo, tags, creds, attempts=cfg.registry.attempts, progress=progress,
                         echo=echo, engine=engine)
        with authfile(creds, repo) as auth:
            sk = _skopeo(cfg, auth, echo)
            for t in tags:
                if t == CACHE_TAG:
                    continue  # a moving tag: another run may move it on at any time, and that is no error
                served = sk.digest(f"{repo}:{t}")
                if served != res.digest:
                    raise RegistryError(f"{repo}:{t} serves {served}, but the push reported {res.digest}",
                                        "another push raced this one: run make push again")
            rec.digest, rec.repository, rec.pushed_tags = res.digest, repo, tags
            rec.save(root)
            echo(f"pushed {repo}@{res.digest}" + ("" if res.layers_uploaded else " (every layer was already there)"))
            echo(f"  {_mb(res.bytes_uploaded)} uploaded ({res.layers_uploaded} layer(s) uploaded, "
                 f"{res.layers_reused} already in the registry) in {res.seconds}s; the registry serves the same digest")
            supplied = trust.finish(sk, creds, repo, res.digest, tags[0], echo)
        rec.save(root)
    return PushResult(repo, res.digest, tuple(tags), res, supplied)


# --------------------------------------------------------------------------------------- release
def _image_locks(cfg: PlatformConfig) -> list[str]:
    return [f"{REQ_DIR}/{lock_filename(s, cfg.image.python)}" for s in IMAGE_SETS]


def release(root: Path, cfg: PlatformConfig, version: str, creds: Credentials | None, *,
            echo: Echo = say) -> ReleaseResult:
    if not SEMVER.match(version):
        raise ReleaseRefused(f"'{version}' is not a release version", "use X.Y.Z, e.g. make release VERSION=1.4.0")
    if git.check(root, "status", "--porcelain", "--untracked-files=no"):
        raise ReleaseRefused("the working tree has uncommitted changes", "commit or stash them, then release")
    if release_path(root, version).exists():
        raise ReleaseRefused(f"release {version} already exists (releases/{version}.json); releases are immutable",
                             "choose a new version")
    tag_commit = git.output(root, "rev-list", "-n", "1", f"v{version}") or ""
    if tag_commit:
        raise ReleaseRefused(f"git tag v{version} already exists (commit {tag_commit[:7]})", "choose a new version")
    assert_fresh(root, cfg)  # a stale lock is refused before anything else
    check_executors(root, cfg.image.python)
    rec = load_build(root)
    assert_shippable(root, rec)
    repo = cfg.registry.repository
    if rec.repository != repo or not rec.digest:
        echo("the build is not in the registry yet: pushing it first")
        push(root, cfg, creds, echo=echo)
        rec = load_build(root)
    digest = rec.digest
    with authfile(creds, repo) as auth:
        sk = _skopeo(cfg, auth, echo)
        existing = sk.tags(repo)
        if version in existing:
            there = sk.digest(f"{repo}:{version}")
            if there != digest:
                raise ReleaseRefused(f"{repo}:{version} already exists as {there}; releases are immutable",
                                     "choose a new version (the registry was not changed)")
            echo(f"{repo}:{version} already points at this build: completing an interrupted release")
        if sk.digest(f"{repo}@{digest}") is None:
            raise ReleaseRefused(f"{repo}@{digest} is not in the registry", "run make push")
        released = [t for t in existing if SEMVER.match(t)]
        tags = release_tags(version, [t for t in released if t != version], latest=cfg.registry.latest)
        # issue 37: signed (and checked by skopeo) before the release tag names the digest
        with supply.release_copier(root, cfg, sk, repo, digest, rec.version_tag, echo) as copy:
            for t in tags:  # X.Y.Z first: the floating tags only move once the release tag exists
                copy(f"{repo}@{digest}", f"{repo}:{t}")
                served = sk.digest(f"{repo}:{t}")
                if served != digest:
                    raise RegistryError(f"{repo}:{t} serves {served}, expected {digest}", "run make release again")
                echo(f"  tagged {repo}:{t}")
    prev = previous_release(root, version)
    result = ReleaseResult(
        version=version, repository=repo, digest=digest, image=f"{repo}@{digest}", tags=tuple(tags),
        lock_fingerprint=rec.lock_fingerprint, commit=rec.revision, built_version=rec.version,
        airflow_version=rec.airflow_version, python_version=rec.python_version, date=_now(),
        previous=prev["version"] if prev else None, serves=rec.labels.get(SERVES) or None)
    path = release_path(root, version)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(_record(result), indent=2, sort_keys=True) + "\n")
    changes = dependency_changes(root, prev, _image_locks(cfg))
    _prepend_changelog(root, result, changes)
    git.check(root, "add", str(path.relative_to(root)), str((root / RELEASES / "CHANGELOG.md").relative_to(root)))
    ident = [] if git.output(root, "config", "user.email") else [
        "-c", "user.name=ml-platform release", "-c", "user.email=release@localhost"]
    git.check(root, *ident, "commit", "-q", "-m", f"Release {version} ({digest[:19]})")
    git.check(root, *ident, "tag", "-a", f"v{version}", "-m", f"Release {version}\n\nimage {repo}@{digest}")
    return result


def _prepend_changelog(root: Path, rec: ReleaseResult, changes: list[str]) -> None:
    path = root / RELEASES / "CHANGELOG.md"
    head = "# Releases\n\nWritten by `make release`; newest first.\n"
    old = path.read_text() if path.exists() else head
    body = old.removeprefix(head)
    since = f" since {rec.previous}" if rec.previous else ""
    entry = (f"\n## {rec.version} ({rec.date[:10]})\n\n"
             f"Image `{rec.image}`, commit `{(rec.commit or '')[:7]}`, Airflow {rec.airflow_version}, "
             f"Python {rec.python_version}, lock fingerprint `{rec.lock_fingerprint}`.\n\n"
             f"Dependency changes{since}:\n\n" + "\n".join(changes) + "\n")
    path.write_text(head + entry + body)


# --------------------------------------------------------------------------------------- promote
def promote(root: Path, cfg: PlatformConfig, env_name: str, version: str, creds: Credentials | None,
            *, echo: Echo = say, store_factory=open_store) -> PromoteResult:
    """Copy release `version` by digest to the environment's repository, between a ledger entry (in the
    environment's bundle store, issue 38) and its completion; a store that cannot be reached is noted."""
    env = load_environment(root, env_name)
    try:
        digest = load_release(root, version).get("digest")
    except PlatformError:
        digest = None  # _promote names what is wrong with the version itself
    result, note = record_promotion(root, env, version, store_factory,
                                    lambda: _promote(root, cfg, env, version, creds, echo=echo),
                                    image_digest=digest)
    return replace(result, ledger=note)


def _promote(root: Path, cfg: PlatformConfig, env: Environment, version: str, creds: Credentials | None,
             *, echo: Echo = say) -> PromoteResult:
    if not SEMVER.match(version):
        raise ReleaseRefused(f"'{version}' is not a release version", "use X.Y.Z, e.g. VERSION=1.4.0")
    rel = load_release(root, version)
    src_repo, digest = rel["repository"], rel["digest"]
    dst_repo = env.registry.repository or cfg.registry.repository
    with authfile(creds, src_repo, dst_repo) as auth:
        sk = _skopeo(cfg, auth, echo)
        info = sk.inspect(f"{src_repo}:{version}")
        if info is None:
            raise ReleaseRefused(f"{src_repo}:{version} is not in the registry", "was the release deleted?")
        if info["digest"] != digest:
            raise ReleaseRefused(f"{src_repo}:{version} now points at {info['digest']}, but release {version} "
                                 f"is {digest}", "the tag was overwritten outside make release: investigate")
        label = info["labels"].get(LOCK_LABEL)
        if label != rel["lock_fingerprint"]:
            raise ReleaseRefused(f"the image's lock fingerprint label ({label}) differs from release {version}'s "
                                 f"({rel['lock_fingerprint']})", "the release record or the image is wrong")
        there = sk.digest(f"{dst_repo}:{version}")
        if there not in (None, digest):
            raise ReleaseRefused(f"{dst_repo}:{version} already exists as {there}", "tags are immutable")
        # issue 37: an environment that requires signatures gets only a digest skopeo verifies
        with supply.promote_copier(root, cfg, env, sk, src_repo, digest, echo) as copy:
            if there is None:
                copy(f"{src_repo}@{digest}", f"{dst_repo}:{version}")
        served = sk.digest(f"{dst_repo}:{version}")
        if served != digest:
            raise RegistryError(f"{dst_repo}:{version} serves {served}, expected {digest}", "make promote again")
    out = PromoteResult(environment=env.name, version=version, repository=dst_repo, digest=digest,
                        source=f"{src_repo}@{digest}", lock_fingerprint=rel["lock_fingerprint"],
                        commit=rel["commit"], promoted_at=_now(), serves=info["labels"].get(SERVES) or None,
                        already=there is not None)
    path = root / out.record_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_record(out, leave_out=("already", "ledger")), indent=2, sort_keys=True) + "\n")
    return out
