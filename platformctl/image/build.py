"""`make build`: lock-check, build with BuildKit, test the image, write the build record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..config import PlatformConfig
from ..errors import BuildError, ConfigError, ImageTestError
from ..lock import header as hdr
from ..lock.core import REQ_DIR, assert_fresh, lock_filename
from ..pipelines.project import render_check
from ..registry.auth import from_environment
from ..registry.reuse import adopt as adopt_reusable, find as find_reusable
from ..version import image_version, source_url
from .engine import BuildSpec, DockerEngine
from .inputs import inputs_fingerprint, inputs_tag
from .uv_image import ensure_local as ensure_uv_image, uv_image_ref, uv_pin

RECORD = Path("build/build-record.json")
IMAGE_SETS = ("tools", "airflow", "team")  # the locks baked into (or used to build) the image
SECRET_ENV = {"ca_bundle": "CA_BUNDLE", "index_url": "INDEX_URL_FILE"}
KNOWN_SECRETS = {"ca_bundle": "extra CA certificates (PEM) for a TLS-intercepting proxy",
                 "index_url": "a file holding a private package index URL with credentials"}


@dataclass
class BuildRecord:
    image: str
    tags: list[str]
    image_id: str
    digest: str | None  # registry digest, set once pushed
    version: str
    revision: str
    dirty: bool
    created: str
    airflow_version: str
    python_version: str
    base_mode: str
    base_image: str
    lock_fingerprint: str
    labels: dict[str, str]
    build_seconds: float
    tested: bool = False  # the image tests passed on this image id
    inputs: str | None = None  # inputs fingerprint (image/inputs.py); pushed as tag inputs-<fp>
    reused_from: str | None = None  # registry digest adopted instead of building
    tested_here: bool = False  # the image tests ran on this image id in this build (always so when tested)
    verification: str | None = None  # how it came to be trusted: "built and tested here", "adopted, tested here"
    repository: str | None = None  # set by make push, with digest
    pushed_tags: list[str] = field(default_factory=list)


def read_record(root: Path) -> dict | None:
    """build/build-record.json as written by make build (and updated by make push), or None."""
    path = root / RECORD
    return json.loads(path.read_text()) if path.exists() else None


def write_record(root: Path, record: dict) -> None:
    path = root / RECORD
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


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


def build_spec(root: Path, cfg: PlatformConfig, engine: DockerEngine,
               base_id: str | None = None) -> tuple[BuildSpec, dict[str, str]]:
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
    }
    uv_ref = uv_image_ref(root, cfg, base_id)
    if uv_ref:
        args["UV_IMAGE"] = uv_ref
    tags = (f"{img.name}:{v.tag}", f"{img.name}:sha-{v.short}")
    spec = BuildSpec(context=root, dockerfile=root / "Dockerfile", tags=tags, build_args=args,
                     secrets=resolve_secrets(root, cfg), target="platform",
                     platform=cfg.platform if engine.mode == "buildx" else None)
    return spec, {"version": v.version, "revision": v.revision, "dirty": str(v.dirty), "created": v.created}


def _unfetchable(e: BuildError, ref: str) -> bool:
    """The build failed because the engine could not fetch image `ref` (BuildKit's metadata step)."""
    names = {ref, f"docker.io/{ref}", f"docker.io/library/{ref}"}
    return any(f"load metadata for {n}]" in e.message for n in names)


def build_plan(root: Path, cfg: PlatformConfig, engine: DockerEngine) -> tuple[BuildSpec, dict[str, str], str | None]:
    """What make build would build: its spec, version info and inputs fingerprint (None: not computable)."""
    base_id = engine.image_id(cfg.image.resolved_base_image(cfg.airflow_version))
    spec, vinfo = build_spec(root, cfg, engine, base_id)
    return spec, vinfo, inputs_fingerprint(root, spec, base_id)


def run_image_tests(root: Path, image: str, engine: DockerEngine) -> None:
    env = {**os.environ, "PLATFORM_IMAGE": image, "DOCKER": engine.cli}
    cmd = [sys.executable, "-m", "pytest", "tests/integration/image", "-q", "-p", "no:cacheprovider"]
    print(f"testing image: {' '.join(cmd[1:])}", flush=True)
    if subprocess.run(cmd, cwd=root, env=env).returncode != 0:
        raise ImageTestError(f"image {image} failed its tests", "see the pytest output above; its build record says tested: false, so push and release refuse it")


def _adopt(root, cfg, engine, spec, vinfo, inputs, hit, creds, run_tests: bool = True) -> BuildRecord:
    """Adopt the registry's image for these inputs. It is trusted only once the image tests pass on it
    here: anyone who can push to the repository could have planted an image under an inputs-<fp> tag
    with the right labels, so neither the tag nor the labels prove this pipeline built or tested it."""
    repo = cfg.registry.repository
    print(f"{repo}:{inputs_tag(inputs)} ({hit['digest']}) has the same inputs: adopting it instead of "
          f"rebuilding, once the image tests pass on it here", flush=True)
    t0 = time.perf_counter()
    record: BuildRecord | None = None

    def verify(image_id: str) -> bool:
        nonlocal record
        labels = (engine.inspect(image_id).get("Config") or {}).get("Labels") or {}
        record = BuildRecord(
            image=spec.tags[0], tags=list(spec.tags), image_id=image_id, digest=hit["digest"],
            version=vinfo["version"], revision=vinfo["revision"], dirty=False, created=vinfo["created"],
            airflow_version=cfg.airflow_version, python_version=cfg.image.python, base_mode=cfg.image.base_mode,
            base_image=spec.build_args["BASE_IMAGE"], lock_fingerprint=spec.build_args["LOCK_FINGERPRINT"],
            labels=labels, build_seconds=round(time.perf_counter() - t0, 2), tested=False, repository=repo,
            inputs=inputs, reused_from=hit["digest"], verification="adopted from the registry, not tested",
        )
        write_record(root, asdict(record))  # tested: false until the tests pass on it here
        if not run_tests:
            return False
        run_image_tests(root, image_id, engine)
        record.tested = record.tested_here = True
        record.verification = "adopted from the registry, image tests passed on it in this build"
        return True

    image_id, pushed = adopt_reusable(cfg, engine, hit, spec.tags[0].split(":", 1)[1],
                                      vinfo["revision"][:7], list(spec.tags), creds, verify=verify)
    assert record is not None
    record.build_seconds = round(time.perf_counter() - t0, 2)
    record.pushed_tags = [*pushed, inputs_tag(inputs)] if pushed else []
    write_record(root, asdict(record))
    if pushed:
        print(f"  tagged {repo}:{', '.join(pushed)} -> {hit['digest']} (tested here; its version label stays "
              f"{record.labels.get('org.opencontainers.image.version', '?')})")
    else:
        print(f"  not tested (--no-test): {hit['digest']} is tagged locally only and its record says tested: "
              "false, so push and release refuse it")
    return record


def check_inputs(root: Path, cfg: PlatformConfig) -> None:
    """What make build refuses before it touches the host or the engine."""
    assert_fresh(root, cfg)
    render_check(root)  # the DAGs baked into the image are the ones the pipelines describe
    resolve_secrets(root, cfg)


def build_image(root: Path, cfg: PlatformConfig, *, run_tests: bool = True, echo: bool = True,
                engine: DockerEngine | None = None, reuse: bool = True, inputs_checked: bool = False) -> BuildRecord:
    if not inputs_checked:
        check_inputs(root, cfg)  # bad inputs first, before looking for an engine
    engine = engine or DockerEngine.detect(cfg.image.docker, cfg.image.engine)
    spec, vinfo, inputs = build_plan(root, cfg, engine)
    if inputs and reuse and vinfo["dirty"] != "True":
        creds = from_environment()
        hit = find_reusable(cfg, inputs, creds)
        if hit and hit["labels"].get("io.ml-platform.lock.fingerprint") == spec.build_args["LOCK_FINGERPRINT"]:
            return _adopt(root, cfg, engine, spec, vinfo, inputs, hit, creds, run_tests)
    print(f"building {spec.tags[0]} (python {cfg.image.python}, base {spec.build_args['BASE_IMAGE']}, "
          f"{cfg.image.base_mode} mode) with {engine.cli} [{engine.mode}]", flush=True)
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
    info = engine.inspect(image_id)
    labels = info.get("Config", {}).get("Labels") or {}
    record = BuildRecord(
        image=spec.tags[0], tags=list(spec.tags), image_id=image_id, digest=None,
        version=vinfo["version"], revision=vinfo["revision"], dirty=vinfo["dirty"] == "True",
        created=vinfo["created"], airflow_version=cfg.airflow_version, python_version=cfg.image.python,
        base_mode=cfg.image.base_mode, base_image=spec.build_args["BASE_IMAGE"],
        lock_fingerprint=spec.build_args["LOCK_FINGERPRINT"], labels=labels, build_seconds=seconds,
        inputs=inputs,
    )
    write_record(root, asdict(record))  # tested: false until they pass
    if run_tests:
        run_image_tests(root, image_id, engine)
        record.tested = record.tested_here = True
        record.verification = "built and tested in this build"
        write_record(root, asdict(record))
    return record
