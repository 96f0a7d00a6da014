"""`make build`: lock-check, build with BuildKit, test the image, write the build record."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import PlatformConfig, collect_overrides, load_config
from ..engine import BuildSpec, ContainerEngine
from ..errors import BuildError, ConfigError, ImageTestError
from ..executors import check_project as check_executors
from ..lock import header as hdr
from ..lock.core import REQ_DIR, assert_fresh, lock_filename
from ..pipelines.project import render_check
from ..record import CACHE_TAG, IMAGE_SETS, BuildRecord
from ..version import VersionInfo, image_version, source_url
from . import checks
from .inputs import inputs_fingerprint
from .uv_image import ensure_local as ensure_uv_image, uv_image_ref, uv_pin
from ..output import say

CHECKS_CACHE = Path("build/image-checks")  # the API check's migrated DB, per dependency key
SECRET_ENV = {"ca_bundle": "CA_BUNDLE", "index_url": "INDEX_URL_FILE"}
KNOWN_SECRETS = {"ca_bundle": "extra CA certificates (PEM) for a TLS-intercepting proxy",
                 "index_url": "a file holding a private package index URL with credentials"}


def image_lock_fingerprint(root: Path, cfg: PlatformConfig) -> str:
    parts = []
    for s in IMAGE_SETS:
        text = (root / REQ_DIR / lock_filename(s, cfg.image.python)).read_text()
        parts.append(f"{s}={hdr.body_fingerprint(hdr.split(text)[2])}")
    return hdr.sha256(";".join(parts))


def resolve_secrets(root: Path, cfg: PlatformConfig) -> dict[str, Path]:
    out = {}
    for sid, raw in cfg.image.build_secrets.items():
        if sid not in KNOWN_SECRETS:
            raise ConfigError(f"image.build_secrets.{sid} is not a known secret id",
                              "known: " + ", ".join(f"{k} ({v})" for k, v in KNOWN_SECRETS.items()))
        path = (root / raw).resolve() if not os.path.isabs(raw) else Path(raw)
        if not path.is_file():
            raise ConfigError(f"build secret file for '{sid}' is missing: {raw}",
                              f"create it, or drop image.build_secrets.{sid} (set with {SECRET_ENV[sid]}=/path)")
        out[sid] = path
    return out


def serves_label() -> str:
    from ..deploy.compat import serves_label as label

    return label()


def build_spec(root: Path, cfg: PlatformConfig, engine: ContainerEngine,
               base_id: str | None = None) -> tuple[BuildSpec, VersionInfo]:
    """The build's arguments, tags, secrets and target. base_id (the base image's id in the engine, when
    it has it) names the uv tools image to mount; without it uv is bootstrapped inside the build."""
    v = image_version(root, cfg.image.version)
    img = cfg.image
    fingerprint = image_lock_fingerprint(root, cfg)
    args = {
        "BASE_IMAGE": img.resolved_base_image(cfg.airflow_version),
        "BASE_MODE": img.base_mode,
        "PY_TAG": img.python.replace(".", ""),
        "UV_VERSION": uv_pin(root, cfg),
        "PYTHON_VERSION": img.python,
        "AIRFLOW_VERSION": cfg.airflow_version,
        "VERSION": v.version,
        "REVISION": v.revision,
        "CREATED": v.created,
        "LOCK_FINGERPRINT": fingerprint,
        "TITLE": img.name,
        "SOURCE": img.source or source_url(root),
        "ML_PLATFORM_SERVES": serves_label(),  # what the operator package serves (issue 38)
    }
    uv_ref = uv_image_ref(root, cfg, base_id)
    if uv_ref:
        args["UV_IMAGE"] = uv_ref
    tags = (f"{img.name}:{v.tag}", f"{img.name}:sha-{v.short}")
    spec = BuildSpec(context=root, dockerfile=root / "Dockerfile", tags=tags, build_args=args,
                     secrets=resolve_secrets(root, cfg), target="platform",
                     platform=cfg.platform if engine.mode == "buildx" else None,
                     cache_from=(cache_ref(cfg),) if img.build_cache == "registry" else (),
                     inline_cache=img.build_cache == "registry")
    return spec, v


def cache_ref(cfg: PlatformConfig) -> str:
    """Where image.build_cache=registry keeps BuildKit's cache: the repository's moving buildcache tag."""
    return f"{cfg.registry.repository}:{CACHE_TAG}"


def _unfetchable(e: BuildError, ref: str) -> bool:
    """The build failed because the engine could not fetch image `ref` (BuildKit's metadata step)."""
    names = {ref, f"docker.io/{ref}", f"docker.io/library/{ref}"}
    return any(f"load metadata for {n}]" in e.message for n in names)


def build_plan(root: Path, cfg: PlatformConfig, engine: ContainerEngine) -> tuple[BuildSpec, VersionInfo, str | None]:
    """What make build would build: its spec, version info and inputs fingerprint (None: not computable)."""
    base_id = engine.image_id(cfg.image.resolved_base_image(cfg.airflow_version))
    spec, vinfo = build_spec(root, cfg, engine, base_id)
    return spec, vinfo, inputs_fingerprint(root, spec, base_id)


@dataclass
class ImageTestReport:
    runs: list[checks.GroupRun]
    checks: dict  # the build record's `checks`
    seconds: dict[str, float | None]  # per group; None: not run (a recorded pass on the same key)

    def summary(self) -> str:
        return ", ".join(f"{r.group} {'cached' if r.skipped else f'{r.seconds:.1f}s'}" for r in self.runs)


def run_image_tests(root: Path, image: str, engine: ContainerEngine, *, full: bool = False,
                    cfg: PlatformConfig | None = None) -> ImageTestReport:
    """The image checks (image/checks: deps, code, api side by side). deps is skipped when the build record
    holds a pass on the same dependency layers, pins and checks (full: never skipped). Raises ImageTestError
    on a failure; the build record's `checks` says what passed."""
    cfg = cfg or load_config(root, collect_overrides())
    info = engine.inspect(image)
    labels = (info.get("Config") or {}).get("Labels") or {}
    python = labels.get("io.ml-platform.python.version") or cfg.image.python
    expect = checks.Expect.from_project(root, python, cfg.airflow_version)
    previous = (BuildRecord.load(root) or BuildRecord()).checks or None
    say(f"testing image: {image[:19]}, " + ("every check group" if full else "deps (unless recorded), code, api"))
    runs, rec = checks.run_checks(engine, image, info, expect, previous=previous, full=full,
                                  cache_dir=root / CHECKS_CACHE)
    report = ImageTestReport(runs, rec, {r.group: None if r.skipped else r.seconds for r in runs})
    for r in runs:
        if r.skipped:
            say(f"  {r.group}: cached ({r.skipped})")
            continue
        say(f"  {r.group}: {sum(x.ok for x in r.results)}/{len(r.results)} passed in {r.seconds:.1f}s")
        for x in r.results:
            if not x.ok:
                say(f"    FAILED {x.name}: {x.detail[:1500]}")
    failed = [f"{x.group}/{x.name}" for r in runs for x in r.results if not x.ok]
    if failed:
        record = BuildRecord.load(root)
        if record is not None and record.image_id == info.get("Id"):
            record.checks = {g: v for g, v in rec.items() if v.get("passed")}
            record.save(root)
        raise ImageTestError(f"image {image} failed {len(failed)} check(s): {', '.join(failed)}",
                             "see the failures above; its build record says tested: false, so push and release refuse it")
    return report


def check_inputs(root: Path, cfg: PlatformConfig, timings: dict | None = None) -> None:
    """What make build refuses before it touches the host or the engine (timings: seconds of each, filled in)."""
    t = time.perf_counter()
    assert_fresh(root, cfg)
    check_executors(root, cfg.image.python)  # every environment's executor loads from these locks
    t1 = time.perf_counter()
    render_check(root)  # the DAGs baked into the image are the ones the pipelines describe
    if timings is not None:
        timings.update({"lock-check": round(t1 - t, 2), "render-check": round(time.perf_counter() - t1, 2)})
    resolve_secrets(root, cfg)


def new_record(cfg: PlatformConfig, spec: BuildSpec, vinfo: VersionInfo, image_id: str, labels: dict[str, str],
               **rest) -> BuildRecord:
    """The build record of image_id for this spec and version info (rest: the fields that differ)."""
    return BuildRecord(
        image=spec.tags[0], tags=list(spec.tags), image_id=image_id,
        version=vinfo.version, revision=vinfo.revision, created=vinfo.created,
        airflow_version=cfg.airflow_version, python_version=cfg.image.python, base_mode=cfg.image.base_mode,
        base_image=spec.build_args["BASE_IMAGE"], lock_fingerprint=spec.build_args["LOCK_FINGERPRINT"],
        labels=labels, **rest)


def build(root: Path, cfg: PlatformConfig, engine: ContainerEngine, spec: BuildSpec, vinfo: VersionInfo,
          inputs: str | None, *, run_tests: bool = True, echo: bool = True, full_tests: bool = False,
          timings: dict | None = None, started: float | None = None) -> BuildRecord:
    """Build spec with the engine, write its record (tested: false), run the image tests and record the result.
    timings: seconds already measured, the build's and tests' are added; started: when the build step began."""
    timings = {} if timings is None else timings
    t = time.perf_counter() if started is None else started
    say(f"building {spec.tags[0]} (python {cfg.image.python}, base {spec.build_args['BASE_IMAGE']}, "
        f"{cfg.image.base_mode} mode) with {engine.cli} [{engine.mode}]")
    t0 = time.perf_counter()
    uv_ref = spec.build_args.get("UV_IMAGE")
    if uv_ref:
        ensure_uv_image(root, engine, uv_ref, spec, echo=echo)
    try:
        image_id = engine.build(spec, root / "build" / "build.log", echo=echo)
    except BuildError as e:
        base = spec.build_args["BASE_IMAGE"]
        if uv_ref and cfg.image.uv_image and _unfetchable(e, uv_ref):
            raise BuildError(f"image.uv_image {uv_ref} cannot be fetched by the engine: {e.message}",
                             "point UV_IMAGE / image.uv_image at an image the engine can pull (with uv at /uv), "
                             "or unset it to have make build make one from the tools lock") from e
        if _unfetchable(e, base):
            raise BuildError(f"base image {base} (image.base_image / BASE_IMAGE) cannot be fetched by the engine: "
                             f"{e.message}", "point BASE_IMAGE at an image the engine has or can pull; without "
                             "Docker Hub make one with scripts/make-base-image.sh " + base) from e
        raise
    seconds = round(time.perf_counter() - t0, 2)
    timings["build"] = round(time.perf_counter() - t, 2)
    info = engine.inspect(image_id)
    labels = info.get("Config", {}).get("Labels") or {}
    previous = BuildRecord.load(root)
    record = new_record(
        cfg, spec, vinfo, image_id, labels, digest=None, dirty=vinfo.dirty, build_seconds=seconds,
        inputs=inputs, timings=timings,
        # a dependency pass is keyed by content (layer digests, pins, checks): carried over, it is used only
        # if this image has the same key
        checks={k: v for k, v in (previous.checks if previous else {}).items() if k == "deps"},
    )
    record.save(root)  # tested: false until they pass
    if run_tests:
        report = run_image_tests(root, image_id, engine, full=full_tests, cfg=cfg)
        record.tested = record.tested_here = True
        record.verification = "built and tested in this build"
        record.checks = report.checks
        timings.update({f"test {g}": s for g, s in report.seconds.items()})
        record.save(root)
    return record
