"""The image's SBOM: CycloneDX JSON from the image's installed environment, merged with the locks' hashes.

1. The image's own Python lists its distributions: a container of the image copies every `*.dist-info`
   (metadata only, no code) on its sys.path into a host folder.
2. `cyclonedx-py environment` reads that folder (with `-S` and the folder as the only site directory):
   purl, version, licence, the dependency graph; `--output-reproducible` with SOURCE_DATE_EPOCH (the
   commit's time) keeps it byte-identical for the same inputs.
3. cyclonedx-python-lib merges in the sha256 hashes each pin has in the image's hashed locks (the hashes
   the installer accepted: the installed distribution's is one of them), adds the image itself as the main
   component and the base image and Airflow as components it depends on, and serializes it again.

Written to build/sbom.cdx.json (next to the build record, which names its sha256 and the image id it
describes); make push attaches it to the pushed digest (attach.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from .. import git
from ..config import PlatformConfig
from ..engine import ContainerEngine
from ..errors import SbomError
from ..lock.core import REQ_DIR, lock_filename
from ..record import IMAGE_SETS, BuildRecord

SBOM_PATH = Path("build/sbom.cdx.json")
SPEC = "1.6"
MEDIA_TYPE = "application/vnd.cyclonedx+json"

# Run by the image's own Python: copy the distributions' metadata (not RECORD, not code) to argv[1].
_EXPORT = r"""
import json, os, shutil, sys
out = sys.argv[1]
site = os.path.join(out, "site-packages")
os.makedirs(site, exist_ok=True)
seen = set()
for p in sys.path:
    if not p or not os.path.isdir(p):
        continue
    for n in sorted(os.listdir(p)):
        if n.endswith(".dist-info") and n not in seen and os.path.isdir(os.path.join(p, n)):
            seen.add(n)
            shutil.copytree(os.path.join(p, n), os.path.join(site, n), ignore=shutil.ignore_patterns("RECORD"))
json.dump({"python": sys.version.split()[0], "executable": sys.executable, "count": len(seen)},
          open(os.path.join(out, "python.json"), "w"))
"""


@dataclass(frozen=True)
class SbomResult:
    path: Path
    sha256: str
    image_id: str
    components: int
    with_hashes: int
    licensed: int
    dependencies: int
    python: str

    def summary(self) -> str:
        return (f"{self.components} components ({self.with_hashes} with lock sha256, {self.licensed} with a "
                f"licence), {self.dependencies} dependency entries; CycloneDX {SPEC} JSON, sha256:{self.sha256[:12]}")


def image_locks(root: Path, cfg: PlatformConfig) -> list[Path]:
    return [root / REQ_DIR / lock_filename(s, cfg.image.python) for s in IMAGE_SETS]


def lock_hashes(locks: list[Path]) -> dict[tuple[str, str], tuple[list[str], str]]:
    """(canonical name, version) -> (sha256 hashes, lock file name), from hashed locks (pip-requirements-parser,
    the parser cyclonedx-py's requirements command uses)."""
    from pip_requirements_parser import RequirementsFile

    out: dict[tuple[str, str], tuple[list[str], str]] = {}
    for lock in locks:
        if not lock.exists():
            continue
        for req in RequirementsFile.from_file(str(lock), include_nested=False).requirements:
            spec = list(req.specifier) if req.specifier else []
            if not req.name or len(spec) != 1 or spec[0].operator != "==":
                continue
            hashes = sorted(h.split(":", 1)[1] for h in req.hash_options if h.startswith("sha256:"))
            out[(canonicalize_name(req.name), spec[0].version)] = (hashes, lock.name)
    return out


def export_environment(engine: ContainerEngine, image: str, dest: Path) -> dict:
    """Copy the image's distribution metadata into dest/site-packages (a container of the image, removed)."""
    dest.mkdir(parents=True, exist_ok=True)
    p = engine.run(image, ["-c", _EXPORT, "/sbom-out"], entrypoint="python3", user="0",
                   volumes=[f"{dest}:/sbom-out"], timeout=300)
    if p.returncode != 0:
        tail = (p.stderr or p.stdout or "").strip().splitlines()
        raise SbomError(f"cannot list the Python environment of image {image[:19]} "
                        f"({tail[-1] if tail else 'exit ' + str(p.returncode)})",
                        "the image must have python3 on its PATH (make build's images do)")
    return json.loads((dest / "python.json").read_text())


def source_date_epoch(root: Path, rec: BuildRecord) -> str:
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        return env
    t = git.output(root, "log", "-1", "--format=%ct", rec.revision or "HEAD") if rec.revision else None
    return (t or "0").strip()


def generate(root: Path, cfg: PlatformConfig, engine: ContainerEngine, rec: BuildRecord, *,
             base_digest: str | None = None) -> SbomResult:
    """Make build/sbom.cdx.json for the record's image and record it in the build record (extra.sbom)."""
    if not rec.image_id:
        raise SbomError("the build record names no image", "run make build first")
    with tempfile.TemporaryDirectory(prefix="platform-sbom-") as d:
        tmp = Path(d)
        info = export_environment(engine, rec.image_id, tmp / "env")
        raw = tmp / "env.cdx.json"
        env = {**os.environ, "PYTHONPATH": str(tmp / "env" / "site-packages"),
               "SOURCE_DATE_EPOCH": source_date_epoch(root, rec)}
        cyclonedx = Path(sys.executable).with_name("cyclonedx-py")
        cmd = [str(cyclonedx) if cyclonedx.exists() else "cyclonedx-py", "environment", "-S", "--output-reproducible", "--no-validate",
               "--sv", SPEC, "--of", "JSON", "-o", str(raw), sys.executable]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=d, timeout=300)
        if p.returncode != 0:
            tail = (p.stderr or p.stdout).strip().splitlines()
            raise SbomError(f"cyclonedx-py environment failed ({tail[-1] if tail else p.returncode})")
        text = merge(json.loads(raw.read_text()), lock_hashes(image_locks(root, cfg)), rec, cfg,
                     base_digest=base_digest)
    out = root / SBOM_PATH
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    res = summarize(out, rec.image_id or "", info.get("python", "?"))
    rec.extra["sbom"] = {"path": str(SBOM_PATH), "sha256": res.sha256, "image_id": rec.image_id,
                         "components": res.components, "python": res.python}
    rec.save(root)
    return res


def merge(env_bom: dict, hashes: dict[tuple[str, str], tuple[list[str], str]], rec: BuildRecord,
          cfg: PlatformConfig, *, base_digest: str | None = None) -> str:
    """The environment's BOM with the locks' hashes, the image as main component, the base image and Airflow as
    its direct dependencies; serialized reproducibly (no serial number, SOURCE_DATE_EPOCH's timestamp)."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    bom = Bom.from_json(env_bom)  # type: ignore[attr-defined]
    timestamp = bom.metadata.timestamp if "timestamp" in env_bom.get("metadata", {}) else None
    airflow = None
    for c in bom.components:
        key = (canonicalize_name(c.name), c.version or "")
        if key in hashes:
            shas, lock = hashes[key]
            for h in shas:
                c.hashes.add(HashType(alg=HashAlgorithm.SHA_256, content=h))
            c.properties.add(Property(name="ml-platform:lock", value=lock))
        if key[0] == "apache-airflow":
            airflow = c
    repo = rec.repository or cfg.registry.repository
    image = Component(type=ComponentType.CONTAINER, name=repo, version=rec.version or "", bom_ref="image",
                      properties=[Property(name="ml-platform:lock-fingerprint", value=rec.lock_fingerprint or ""),
                                  Property(name="ml-platform:revision", value=rec.revision or ""),
                                  Property(name="ml-platform:python", value=rec.python_version or "")])
    base_name = rec.base_image or cfg.image.resolved_base_image(cfg.airflow_version)
    base = Component(type=ComponentType.CONTAINER, name=base_name, bom_ref="base-image",
                     version=base_digest or "", description="the image's base",
                     purl=PackageURL(type="docker", name=base_name.rsplit(":", 1)[0].rsplit("/", 1)[-1],
                                     version=base_digest or base_name.rsplit(":", 1)[-1],
                                     qualifiers={"repository_url": base_name.rsplit(":", 1)[0]}))
    bom.components.add(base)
    bom.metadata.component = image
    bom.register_dependency(image, [base] + ([airflow] if airflow else []))
    bom.serial_number = None  # type: ignore[assignment]  # reproducible, as cyclonedx-py --output-reproducible
    bom.metadata.timestamp = timestamp  # type: ignore[assignment]
    return JsonV1Dot6(bom).output_as_string(indent=2) + "\n"


def summarize(path: Path, image_id: str = "", python: str = "?") -> SbomResult:
    data = path.read_bytes()
    doc = json.loads(data)
    comps = doc.get("components", [])
    return SbomResult(path, hashlib.sha256(data).hexdigest(), image_id, len(comps),
                      sum(1 for c in comps if c.get("hashes")), sum(1 for c in comps if c.get("licenses")),
                      len(doc.get("dependencies", [])), python)


def current(root: Path, rec: BuildRecord) -> SbomResult | None:
    """build/sbom.cdx.json when it describes the record's image and is unchanged since it was made, else None."""
    meta = rec.extra.get("sbom") or {}
    path = root / SBOM_PATH
    if meta.get("image_id") != rec.image_id or not path.exists():
        return None
    res = summarize(path, rec.image_id or "", meta.get("python", "?"))
    if res.sha256 != meta.get("sha256"):
        raise SbomError(f"{SBOM_PATH} changed since make build wrote it (sha256 {res.sha256[:12]}, recorded "
                        f"{str(meta.get('sha256'))[:12]})", "run make sbom to make it again from the image")
    return res


def ensure(root: Path, cfg: PlatformConfig, engine: ContainerEngine, rec: BuildRecord) -> SbomResult:
    return current(root, rec) or generate(root, cfg, engine, rec)
