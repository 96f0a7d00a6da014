"""Step c: the candidate image, built from the scratch tree under a local tag that says what it is, and the
full image checks (image/checks: deps, code, api) run on it. Never pushed or released: the tag is local,
and the build record it gets is the scratch tree's, never the project's build/build-record.json."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import PlatformConfig
from ..engine import ContainerEngine
from ..errors import ImageTestError
from ..image.build import build_spec, new_record, run_image_tests
from ..image.uv_image import ensure_local as ensure_uv_image
from ..output import captured


# what a busy machine fails, not the candidate: the API server not answering in time, a DAG file's import
# running past Airflow's DagBag import timeout (30 s) in the code check
BUSY = ("no healthy answer within", "DagBag import timeout")


def candidate_tag(cfg: PlatformConfig, to_version: str) -> str:
    return f"{cfg.image.name}:upgrade-candidate-airflow-{to_version}-py{cfg.image.python}"


@dataclass
class CandidateImage:
    tag: str
    image_id: str
    size: int
    seconds: float


@dataclass
class ImageChecks:
    ok: bool
    seconds: float
    groups: dict[str, str] = field(default_factory=dict)  # group -> "n/m passed in s"
    failures: list[str] = field(default_factory=list)
    earlier: list[str] = field(default_factory=list)  # tries that timed out before this result


def build_candidate(tree: Path, cfg: PlatformConfig, engine: ContainerEngine, tag: str, log: Path) -> CandidateImage:
    """Build the scratch tree's image (its locks, its platform.yaml) as tag; its build record goes to the tree."""
    t0 = time.perf_counter()
    base_id = engine.image_id(cfg.image.resolved_base_image(cfg.airflow_version))
    spec, vinfo = build_spec(tree, cfg, engine, base_id)
    spec = dataclasses.replace(spec, tags=(tag,))
    uv_ref = spec.build_args.get("UV_IMAGE")
    if uv_ref:
        ensure_uv_image(tree, engine, uv_ref, spec, echo=False)
    image_id = engine.build(spec, log, echo=False)
    info = engine.inspect(image_id)
    labels = (info.get("Config") or {}).get("Labels") or {}
    rec = new_record(cfg, spec, vinfo, image_id, labels, digest=None, dirty=True,
                     build_seconds=round(time.perf_counter() - t0, 2), verification="upgrade rehearsal candidate")
    rec.save(tree)
    return CandidateImage(tag, image_id, int(info.get("Size") or 0), round(time.perf_counter() - t0, 2))


def check_candidate(tree: Path, cfg: PlatformConfig, engine: ContainerEngine, image: str, *,
                    tries: int = 2) -> ImageChecks:
    """Every check group on the candidate: its build record holds no pass, so deps, code and api all run. The
    API check's migrated database is kept per pins under the rehearsal's folder (tree/build/image-checks links
    there), so a second rehearsal of the pair starts the API server without migrating. A failure that is
    only a timeout of a busy machine (BUSY) is tried once more; the result says so."""
    t0 = time.perf_counter()
    earlier: list[str] = []
    for attempt in range(1, tries + 1):
        lines: list[str] = []
        try:
            with captured() as lines:
                report = run_image_tests(tree, image, engine, cfg=cfg)
        except ImageTestError as exc:
            failures = [ln.strip() for ln in lines if ln.strip().startswith("FAILED")] or [exc.message]
            timeouts_only = all(any(t in f for t in BUSY) for f in failures)
            if attempt < tries and timeouts_only:
                earlier.append("; ".join(failures)[:300])
                continue
            return ImageChecks(False, round(time.perf_counter() - t0, 2), {}, failures, earlier)
        groups = {r.group: f"{sum(x.ok for x in r.results)}/{len(r.results)} passed in {r.seconds:.1f}s"
                  for r in report.runs}
        return ImageChecks(True, round(time.perf_counter() - t0, 2), groups, [], earlier)
    raise AssertionError("unreachable")
