"""Which image an environment gets: the one resolver deploy and plan share.

In order: the release being promoted (plan with VERSION=), the release promoted to the environment
(deploy/<env>/image.json, written by make promote), the local build (build/build-record.json).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import PlatformConfig
from .live import env_repository
from ..environments import Environment
from ..record import BuildRecord
from ..registry.records import PROMOTION, load_release


@dataclass(frozen=True)
class EnvImage:
    repository: str
    tag: str | None
    digest: str | None  # in the registry (pushed or promoted)
    image_id: str | None  # the local build's id (not pushed: no digest)
    revision: str | None
    release: str | None
    source: str  # for people: "promoted release 1.2.3", "build 0.1.0-dev.3 (not pushed)", ...
    serves: dict | None = None  # what a promoted release's image can serve (its io.ml-platform.serves label, #38)

    @property
    def key(self) -> str | None:
        """What the bundle is built for (part of its version): the digest, else the local image id."""
        return self.digest or self.image_id

    def as_dict(self) -> dict:
        return asdict(self)

    def for_deploy(self, airflow_version: str | None = None) -> dict:
        """The image as deploy's managed config takes it (repository, tag, digest, the local image_id when
        there is one, the Airflow version the chart needs)."""
        out = {"repository": self.repository, "tag": self.tag, "digest": self.digest}
        if self.image_id is not None:
            out["image_id"] = self.image_id
        if self.serves:
            out["serves"] = self.serves
        if airflow_version is not None:
            out["airflow_version"] = airflow_version
        return out


def environment_image(root: Path, cfg: PlatformConfig, env: Environment, version: str | None = None) -> EnvImage:
    """The image deploy points the environment's instance at (after make promote VERSION=, when given)."""
    repo = env_repository(env, cfg)
    if version:
        rel = load_release(root, version)
        return EnvImage(repo, version, rel["digest"], None, rel["commit"], version, f"release {version}")
    promoted = root / PROMOTION.format(env=env.name)
    if promoted.exists():
        p = json.loads(promoted.read_text())
        return EnvImage(p["repository"], p["version"], p["digest"], None, p.get("commit"), p["version"],
                        f"promoted release {p['version']}", p.get("serves"))
    rec = BuildRecord.load(root)
    if rec is None:
        return EnvImage(repo, None, None, None, None, None, "no build (run make build)")
    return EnvImage(repo, rec.version_tag, rec.digest, rec.image_id, rec.revision, None,
                    f"build {rec.version}" + ("" if rec.digest else " (not pushed)"))
