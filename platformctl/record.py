"""The build record, build/build-record.json: what make build made (and tested), updated by make push.

Low in the tree on purpose: the image side writes it, the registry, deploy, stack and status sides read it,
and none of them need to import each other for that. The JSON keeps the keys it always had (sorted, indented),
so records written before this module existed load, and records it writes load in older tools.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

RECORD = Path("build/build-record.json")
IMAGE_SETS = ("tools", "airflow", "team")  # the locks baked into (or used to build) the image: lock_fingerprint's


CACHE_TAG = "buildcache"  # image.build_cache=registry: the moving tag make push keeps BuildKit's cache under


def inputs_tag(fingerprint: str) -> str:
    """The registry tag make push gives a build with these inputs (image/inputs.py), which make build looks for."""
    return f"inputs-{fingerprint[:32]}"


def version_tag(image_tag: str) -> str:
    """`name:0.1.0-dev.3-gabc1234` -> `0.1.0-dev.3-gabc1234`: the tag a push and a deploy use."""
    return image_tag.split(":", 1)[1]


@dataclass
class BuildRecord:
    # every field has a default so that a partial record (hand-written, or a test's) loads; make build
    # writes them all. None: not in the record.
    image: str = ""  # the first local tag
    tags: list[str] = field(default_factory=list)  # local tags: <name>:<version tag>, <name>:sha-<7>
    image_id: str | None = None
    digest: str | None = None  # registry digest, set once pushed
    version: str | None = None
    revision: str | None = None
    dirty: bool = False
    created: str | None = None
    airflow_version: str | None = None
    python_version: str | None = None
    base_mode: str | None = None
    base_image: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    build_seconds: float = 0.0
    tested: bool = False  # the image tests passed on this image id
    lock_fingerprint: str | None = None  # the locks' fingerprint (label io.ml-platform.lock.fingerprint)
    inputs: str | None = None  # inputs fingerprint (image/inputs.py); pushed as tag inputs-<fp>
    reused_from: str | None = None  # registry digest adopted instead of building
    tested_here: bool = False  # the image tests ran on this image id in this build (always so when tested)
    verification: str | None = None  # how it came to be trusted: "built and tested here", "adopted, tested here"
    repository: str | None = None  # set by make push, with digest
    pushed_tags: list[str] = field(default_factory=list)
    # what passed on this image, per check group (image/checks): deps carries the key (layer digests, pins,
    # checks) it passed on, so the next build skips it while that key is unchanged
    checks: dict = field(default_factory=dict)
    timings: dict[str, float | None] = field(default_factory=dict)  # s: lock-check, render-check, build, test <group> (None: cached)
    extra: dict = field(default_factory=dict, repr=False, compare=False)  # keys this version does not know: kept

    # ------------------------------------------------------------------------ disk
    @classmethod
    def from_dict(cls, data: dict) -> BuildRecord:
        known = {f.name for f in fields(cls)} - {"extra"}
        data = {**data}
        if isinstance(data.get("dirty"), str):  # records written before issue 33 may hold "True"/"False"
            data["dirty"] = data["dirty"].strip().lower() == "true"
        rec = cls(**{k: v for k, v in data.items() if k in known})
        rec.extra = {k: v for k, v in data.items() if k not in known}
        return rec

    def to_dict(self) -> dict:
        out = asdict(self)
        del out["extra"]
        return {**self.extra, **out}

    @classmethod
    def load(cls, root: Path) -> BuildRecord | None:
        """build/build-record.json as written by make build (and updated by make push), or None."""
        path = root / RECORD
        return cls.from_dict(json.loads(path.read_text())) if path.exists() else None

    def save(self, root: Path) -> None:
        path = root / RECORD
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    # ------------------------------------------------------------------------ derived
    @property
    def version_tag(self) -> str:
        """The version part of the first local tag (`0.1.0-dev.3-gabc1234`)."""
        return version_tag(self.tags[0])

    @property
    def short_sha(self) -> str:
        return (self.revision or "")[:7]

    @property
    def inputs_tag(self) -> str | None:
        return inputs_tag(self.inputs) if self.inputs else None
