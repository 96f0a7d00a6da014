"""Build and test the image (`make build`, `make test`) as services: typed options and results.

build_image is make build's image (the registry's image for the same inputs when it has one and it passes
the image tests here, else built here); build() adds the host set-up and the timing line.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..config import PlatformConfig
from ..engine import ContainerEngine, detect
from ..image.build import build as build_here, build_plan, check_inputs, new_record, run_image_tests
from ..record import RECORD, BuildRecord, inputs_tag, version_tag
from ..registry.auth import from_environment
from ..registry.reuse import adopt as adopt_reusable, find as find_reusable
from ..output import say
from ..supply import service as supply

STRICT_ENV = "PLATFORM_TEST_STRICT"  # tests/conftest.py: a missing engine or service fails instead of skipping
Echo = Callable[[str], None]


def build_image(root: Path, cfg: PlatformConfig, *, run_tests: bool = True, echo: bool = True,
                engine: ContainerEngine | None = None, reuse: bool = True, inputs_checked: bool = False,
                full_tests: bool = False, timings: dict | None = None) -> BuildRecord:
    """make build's image: the registry's image for these inputs when it has one (reuse, clean tree: adopted
    once the image tests pass on it here), else built here. timings: seconds already measured (check_inputs
    run by the caller); the build's and tests' are added."""
    timings = {} if timings is None else timings
    if not inputs_checked:
        check_inputs(root, cfg, timings)  # bad inputs first, before looking for an engine
    t = time.perf_counter()
    engine = engine or detect(cfg.image.docker, cfg.image.engine)
    spec, vinfo, inputs = build_plan(root, cfg, engine)
    creds = from_environment()
    if spec.cache_from and creds:  # the registry's build cache is read with them
        spec = dataclasses.replace(spec, cache_auth=creds.for_registry(cfg.registry.repository))
    if inputs and reuse and not vinfo.dirty:
        hit = find_reusable(cfg, inputs, creds)
        if hit and hit["labels"].get("io.ml-platform.lock.fingerprint") == spec.build_args["LOCK_FINGERPRINT"]:
            return _adopt(root, cfg, engine, spec, vinfo, inputs, hit, creds, run_tests)
    return build_here(root, cfg, engine, spec, vinfo, inputs, run_tests=run_tests, echo=echo,
                      full_tests=full_tests, timings=timings, started=t)


def _adopt(root, cfg, engine, spec, vinfo, inputs, hit, creds, run_tests: bool = True) -> BuildRecord:
    """Adopt the registry's image for these inputs. It is trusted only once the image tests pass on it
    here: anyone who can push to the repository could have planted an image under an inputs-<fp> tag
    with the right labels, so neither the tag nor the labels prove this pipeline built or tested it."""
    repo = cfg.registry.repository
    say(f"{repo}:{inputs_tag(inputs)} ({hit['digest']}) has the same inputs: adopting it instead of "
        f"rebuilding, once the image tests pass on it here")
    t0 = time.perf_counter()
    record: BuildRecord | None = None

    def verify(image_id: str) -> bool:
        nonlocal record
        labels = (engine.inspect(image_id).get("Config") or {}).get("Labels") or {}
        record = new_record(
            cfg, spec, vinfo, image_id, labels, digest=hit["digest"], dirty=False,
            build_seconds=round(time.perf_counter() - t0, 2), tested=False, repository=repo,
            inputs=inputs, reused_from=hit["digest"], verification="adopted from the registry, not tested",
        )
        record.save(root)  # tested: false until the tests pass on it here
        if not run_tests:
            return False
        record.checks = run_image_tests(root, image_id, engine).checks
        record.tested = record.tested_here = True
        record.verification = "adopted from the registry, image tests passed on it in this build"
        return True

    image_id, pushed = adopt_reusable(cfg, engine, hit, version_tag(spec.tags[0]),
                                      vinfo.short, list(spec.tags), creds, verify=verify)
    assert record is not None
    record.build_seconds = round(time.perf_counter() - t0, 2)
    record.pushed_tags = [*pushed, inputs_tag(inputs)] if pushed else []
    record.save(root)
    if pushed:
        say(f"  tagged {repo}:{', '.join(pushed)} -> {hit['digest']} (tested here; its version label stays "
            f"{record.labels.get('org.opencontainers.image.version', '?')})")
    else:
        say(f"  not tested (--no-test): {hit['digest']} is tagged locally only and its record says tested: "
            "false, so push and release refuse it")
    return record


@dataclass(frozen=True)
class BuildOptions:
    run_tests: bool = True
    echo_log: bool = True  # stream the build log (it is in build/build.log either way)
    reuse: bool = True  # adopt the registry's image for the same inputs
    full_tests: bool = False  # every image check group, even those the build record holds a pass for


@dataclass(frozen=True)
class BuildResult:
    record: BuildRecord
    seconds: float  # the whole command, host set-up included
    timings: dict[str, Any] = field(default_factory=dict)


def build(root: Path, overrides: dict[str, Any], options: BuildOptions = BuildOptions(), *,
          echo: Echo = say) -> BuildResult:
    """Set the host up (inputs checked first), build or adopt the image, test it, write the build record."""
    from ..host.setup import prepare

    t0, timings = time.perf_counter(), {}
    cfg, engine = prepare(root, overrides, "build", preflight=lambda r, c: check_inputs(r, c, timings))
    supply.before_build(root, cfg)  # issue 37: the vulnerability gate, when audit.on_build
    rec = build_image(root, cfg, run_tests=options.run_tests, echo=options.echo_log, reuse=options.reuse,
                      engine=engine, inputs_checked=True, full_tests=options.full_tests, timings=timings)
    echo(f"built {rec.image} in {rec.build_seconds}s")
    echo(f"  tags:     {', '.join(rec.tags)}")
    echo(f"  image id: {rec.image_id}")
    echo(f"  record:   {RECORD}")
    supply.after_build(root, cfg, engine, rec)  # issue 37: the SBOM next to the record, when sbom.on_build
    seconds = time.perf_counter() - t0
    parts = [f"{k} {'cached' if v is None else f'{v:.1f}s'}" for k, v in rec.timings.items()]
    echo(f"timing: {', '.join(parts + [f'total {seconds:.1f}s'])}")
    return BuildResult(rec, seconds, dict(rec.timings))


def tested_build_of_tree(root: Path, cfg, engine) -> bool:
    """The build record is of these exact inputs, passed its image tests, and the engine still has the image."""
    rec = BuildRecord.load(root)
    if not rec or not rec.tested or not rec.inputs:
        return False
    _, _, inputs = build_plan(root, cfg, engine)
    return inputs == rec.inputs and engine.image_id(rec.image_id) is not None


def test(root: Path, overrides: dict[str, Any], pytest_args: list[str], *, echo: Echo = say) -> int:
    """Build first when no tested build of this tree exists, then run every test (strict: a missing engine
    or service fails). Returns pytest's exit code."""
    from ..host.setup import prepare

    cfg, engine = prepare(root, overrides, "test", preflight=check_inputs)
    if not tested_build_of_tree(root, cfg, engine):
        echo("test: no tested build of this tree yet: running make build first")
        build_image(root, cfg, engine=engine, inputs_checked=True)
    env = {**os.environ, STRICT_ENV: "1"}
    return subprocess.run([sys.executable, "-m", "pytest", "tests", *pytest_args], cwd=root, env=env).returncode
