"""Trusted publishing (issue 38): the image check before the switch, the ledger of an environment, the record
of a promotion or a gc. Plain functions with typed results; the commands print them."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from ..environments import Environment
from ..errors import ImageCannotServe, LedgerError, PlatformError, StoreError
from ..record import BuildRecord
from .compat import parse_serves, serves_problem
from .ledger import Entry, ledger_for
from .store import BundleStore


class Promoted(Protocol):
    digest: str


P = TypeVar("P", bound=Promoted)


@dataclass(frozen=True)
class ImageCheck:
    image: str  # what the image is called in messages
    known: bool  # whether the image says what it serves (label io.ml-platform.serves)
    problem: str | None  # why it cannot serve the bundle

    def line(self, env: str) -> str:
        if not self.known:
            return (f"image {self.image} does not say what it serves (no io.ml-platform.serves label: built before "
                    f"it existed); the bundle class checks after the switch")
        if self.problem:
            return f"the image must be promoted first: {self.image} cannot serve this bundle: {self.problem}"
        return f"image {self.image} serves this bundle"


def serves_of(root: Path, image: dict) -> str | None:
    """The io.ml-platform.serves label of the image deploy names: from its promotion or release record, else
    the local build record when it is that build."""
    if image.get("serves"):
        return image["serves"]
    rec = BuildRecord.load(root)
    if rec is not None and ((image.get("digest") and image.get("digest") == rec.digest)
                            or (image.get("image_id") and image.get("image_id") == rec.image_id)
                            or (image.get("tag") and image.get("tag") == rec.version_tag)):
        return rec.labels.get("io.ml-platform.serves")
    return None


def check_image(root: Path, image: dict, needs: dict) -> ImageCheck:
    label = serves_of(root, image)
    name = image.get("tag") or image.get("digest") or image.get("image_id") or "?"
    known, problem = serves_problem(needs, label)
    return ImageCheck(str(name), known, problem)


def refuse_unservable(check: ImageCheck, env: Environment, with_image: str | None) -> None:
    if check.problem:
        raise ImageCannotServe(f"{env.name}: {check.image} cannot serve this bundle: {check.problem}",
                               f"promote an image that does (make promote ENV={env.name} VERSION=...), or deploy "
                               f"with IMAGE=<release> to ship that image with it; nothing was uploaded"
                               + ("" if not with_image else f" (IMAGE={with_image} does not serve it either)"))


def release_image(root: Path, env: Environment, cfg, version: str) -> dict:
    """The image of release `version` as this environment would run it (IMAGE= on make deploy)."""
    from ..registry.records import load_release
    from .live import env_repository

    rel = load_release(root, version)
    return {"repository": env_repository(env, cfg), "tag": version, "digest": rel["digest"],
            "serves": rel.get("serves") or (rel.get("labels") or {}).get("io.ml-platform.serves"),
            "airflow_version": cfg.airflow_version}


def record_promotion(root: Path, env: Environment, version: str, store_factory, run: Callable[[], P],
                     image_digest: str | None = None) -> tuple[P, str]:
    """Run the promotion `run()` (its result has the digest promoted) between a ledger entry and its completion.
    A store that cannot be reached at all (e.g. no S3 credentials on a release machine) is reported, not fatal:
    returns (result, note)."""
    try:
        store = store_factory(root, env)
        store.check()
    except PlatformError as exc:
        return run(), f"ledger: not written ({exc.one_line()})"
    ledger = ledger_for(store, env)
    entry = ledger.begin("promote", version=None, image_digest=image_digest, summary=f"promote release {version}")
    try:
        out = run()
    except PlatformError as exc:
        ledger.complete(entry, f"failed: {exc.one_line()[:300]}")
        raise
    ledger.complete(entry, f"promoted {version} ({out.digest})")
    return out, f"ledger: {entry.id}"


def last_entry(store: BundleStore, env: Environment) -> Entry | None:
    try:
        return ledger_for(store, env).last()
    except (StoreError, LedgerError, ValueError):
        return None


def pointer_refusal(store: BundleStore, env: Environment, pointer: dict | None) -> str | None:
    """Why the instance would refuse the live pointer's version (signature), as the bundle class decides."""
    from ml_platform import bundle_format as fmt

    from .bundle import MANIFEST
    from .deliver import version_prefix

    s = env.signing
    if pointer is None or not (s.allowed_keys or s.require_signatures):
        return None
    version = str(pointer.get("version"))
    try:
        statement = None
        if pointer.get("envelope") is not None or s.require_signatures:
            statement = fmt.check_pointer(pointer, list(s.allowed_keys), environment=env.name).statement
        vp = version_prefix(env.bundle.prefix, version)
        raw = store.get(f"{vp}/{MANIFEST}")
        if raw is None:
            return f"{version} has no {MANIFEST}"
        sig = store.get(f"{vp}/{fmt.MANIFEST_SIGNATURE}")
        if sig is not None or s.require_signatures:
            fmt.check_manifest(json.loads(sig) if sig else None, list(s.allowed_keys), environment=env.name,
                               version=version, manifest_raw=raw, pointer_statement=statement)
    except (fmt.TrustFault, ValueError) as exc:
        return f"{version}: {exc}"
    return None


__all__ = [
    "ImageCheck",
    "check_image",
    "last_entry",
    "parse_serves",
    "pointer_refusal",
    "record_promotion",
    "refuse_unservable",
    "release_image",
]
