#!/usr/bin/env python3
"""bench/engines: the daemonless build (buildah, image.engine podman) against the Docker build (BuildKit), in
one run, on a clean copy of this commit:

  cold         the platform image with no cache (--no-cache), each engine
  plugin edit  one plugin file changed, built again with each engine's cache
  rebuild      podman's no-cache rebuild of the same commit (what make verify-reproducible does), and
               whether it gave the same image id as its cold build

Prints times and ratios (podman / docker; rebuild / cold); nothing is asserted. Needs both engines and the
base image in both (make build, then make build ENGINE=podman). Takes 10-15 minutes on 2 cores.
Run: make bench-engines
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from platformctl.config import collect_overrides, load_config  # noqa: E402
from platformctl.engine import detect  # noqa: E402
from platformctl.image.build import build_plan  # noqa: E402
from platformctl.image.uv_image import ensure_local  # noqa: E402
from tests.integration.helpers import working_tree_copy  # noqa: E402


def timed_build(engine, repo: Path, cfg, tag: str, no_cache: bool) -> tuple[float, str]:
    spec, _, _ = build_plan(repo, cfg, engine)
    if spec.build_args.get("UV_IMAGE"):
        ensure_local(repo, engine, spec.build_args["UV_IMAGE"], spec, echo=False)
    spec = replace(spec, tags=(tag,), no_cache=no_cache, cache_from=(), inline_cache=False)
    t = time.perf_counter()
    image_id = engine.build(spec, repo / "build" / f"bench-{engine.name}.log", echo=False)
    return time.perf_counter() - t, image_id


def edit_plugin(repo: Path, n: int) -> None:
    plugin = repo / "plugins" / "ml_platform_plugin.py"
    plugin.write_text(plugin.read_text() + f"\n# bench edit {n}\n")
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qam",
                    f"bench edit {n}"], cwd=repo, check=True)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    try:
        repo = working_tree_copy(tmp / "repo")
        engines = {}
        for mode in ("auto", "podman"):
            cfg = load_config(repo, {**collect_overrides(environ={}), "image.engine": (mode, "bench")})
            engines[mode] = (detect(cfg.image.docker, mode), cfg)
        rows = {}
        for mode, (engine, cfg) in engines.items():
            rows[(mode, "cold")] = timed_build(engine, repo, cfg, f"bench-engines-{engine.name}:cold", True)
            print(f"{engine.name:7s} cold          {rows[(mode, 'cold')][0]:6.1f} s", flush=True)
        edit_plugin(repo, 1)
        for mode, (engine, cfg) in engines.items():
            rows[(mode, "plugin")] = timed_build(engine, repo, cfg, f"bench-engines-{engine.name}:plugin", False)
            print(f"{engine.name:7s} plugin edit   {rows[(mode, 'plugin')][0]:6.1f} s", flush=True)
        engine, cfg = engines["podman"]
        rows[("podman", "rebuild")] = timed_build(engine, repo, cfg, "bench-engines-podman:rebuild", True)
        same = rows[("podman", "rebuild")][1] == rows[("podman", "plugin")][1]
        print(f"podman  rebuild       {rows[('podman', 'rebuild')][0]:6.1f} s (same image id as its build: {same})")
        print()
        print("| case | docker | podman | ratio (podman / docker) | goal |")
        print("| --- | --- | --- | --- | --- |")
        for case, goal in (("cold", "<= 1.5x"), ("plugin", "<= 2x")):
            a, b = rows[("auto", case)][0], rows[("podman", case)][0]
            print(f"| {case} | {a:.1f} s | {b:.1f} s | {b / a:.2f}x | {goal} |")
        r, c = rows[("podman", "rebuild")][0], rows[("podman", "cold")][0]
        print(f"| reproducible rebuild vs podman cold | | {r:.1f} s vs {c:.1f} s | {r / c:.2f}x | <= 1x |")
        for mode, case in rows:
            eng = engines[mode][0]
            subprocess.run([eng.cli, "rmi", f"bench-engines-{eng.name}:{case}"], capture_output=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
