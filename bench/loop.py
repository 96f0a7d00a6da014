#!/usr/bin/env python3
"""bench/loop: the inner loop a developer waits for, against the naive loop, in one run, on a copy of the
project (working tree included):

  plugin     edit a plugin file       -> `build.py build` (tested image)
  operator   edit an operator file    -> `build.py build`
  pipeline   edit a pipeline YAML     -> `build.py run --pipeline example_etl` on a running local stack

Naive loop for the two image cases: rebuild (`build.py build --no-test`) + the full image suite
(`pytest tests/integration/image`, as make test runs it). For the pipeline: rebuild with every image check
(`build.py render`, `build.py build --full-tests`), restart the stack (down, up) and `build.py run`. Each edit is a new line, so
every build has something to rebuild. The pipeline edit changes a job's env; the run's log must show it (a
run of the previous DAG version is reported as such).

Prints times and ratios; nothing is asserted. Needs a Docker engine and the base image (PYTHON /
BASE_IMAGE / CA_BUNDLE as for make build). Run: make bench-loop [BENCH_LOOP_ARGS=--no-stack]. Takes minutes.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GIT_ID = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]


def project_copy(dst: Path) -> Path:
    """A clone with the working tree as it is committed on top (so the copy versions like a checkout)."""
    subprocess.run(["git", "clone", "-q", str(ROOT), str(dst)], check=True)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split("\0")
    for rel in filter(None, files):
        if (ROOT / rel).is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dst / rel)
    subprocess.run(["git", "add", "-A"], cwd=dst, check=True)
    subprocess.run(["git", *GIT_ID, "commit", "-qm", "bench: working tree", "--allow-empty"], cwd=dst, check=True)
    return dst


class Project:
    def __init__(self, repo: Path, stack_project: str):
        self.repo = repo
        self.env = {**os.environ, "PLATFORM_ROOT": str(repo), "STACK_PROJECT": stack_project}

    def run(self, *args: str, check: bool = True) -> tuple[float, str]:
        t0 = time.perf_counter()
        p = subprocess.run(list(args), cwd=self.repo, env=self.env, capture_output=True, text=True)
        dt = time.perf_counter() - t0
        if check and p.returncode != 0:
            sys.exit(f"failed: {' '.join(args)}\n{p.stdout[-4000:]}\n{p.stderr[-3000:]}")
        return dt, p.stdout + p.stderr

    def tool(self, *args: str, check: bool = True) -> tuple[float, str]:
        return self.run(sys.executable, "build.py", *args, check=check)

    def edit(self, rel: str, line: str) -> None:
        p = self.repo / rel
        p.write_text(p.read_text().rstrip("\n") + f"\n{line}\n")

    def image(self) -> str:
        import json

        return json.loads((self.repo / "build" / "build-record.json").read_text())["image_id"]


def timing_line(out: str) -> str:
    m = re.search(r"^timing: (.*)$", out, re.M)
    return m.group(1) if m else "?"


def baked(p: Project, rel: str, marker: str) -> bool:
    """The built image holds the edit (the build really rebuilt it): the file as the image has it."""
    top, rest = rel.split("/", 1)  # plugins/ is copied to the plugins folder; operators/ is installed
    path = {"plugins": "/opt/airflow/plugins/", "operators": "/opt/venv/lib/python*/site-packages/"}[top] + rest
    from platformctl.config import collect_overrides, load_config
    from platformctl.engine import connect

    cfg = load_config(p.repo, collect_overrides([]))  # the CLI the copy's builds use (DOCKER=, .platform/)
    return marker in connect(cfg.image.docker).run(p.image(), ["-c", f"cat {path}"], entrypoint="bash").stdout


def image_case(p: Project, name: str, rel: str) -> dict:
    marker = f"# bench edit {uuid.uuid4().hex[:8]}"
    before = p.image()
    p.edit(rel, marker)
    ours, out = p.tool("build", "--quiet")
    timing = timing_line(out)
    if p.image() == before or not baked(p, rel, marker):
        sys.exit(f"bench/loop: the image built after the {rel} edit does not hold it: the figure would be a cache hit")
    p.edit(rel, f"# bench edit {uuid.uuid4().hex[:8]}")
    build, _ = p.tool("build", "--quiet", "--no-test")
    suite, out = p.run(sys.executable, "-m", "pytest", "tests/integration/image", "-q", "-p", "no:cacheprovider",
                       "--no-header")
    summary = next((ln for ln in reversed(out.splitlines()) if " passed" in ln or " failed" in ln), "?")
    print(f"  {name}: {ours:.1f}s ({timing}); naive {build + suite:.1f}s", flush=True)
    return {"name": name, "ours": ours, "timing": timing, "naive": build + suite, "naive_build": build,
            "suite": suite, "suite_summary": summary.strip("= ")}


def pipeline_case(p: Project) -> dict:
    etl = "pipelines/example_etl.yaml"
    path = p.repo / etl
    original = path.read_text()

    def edit() -> str:
        target = f"warehouse-{uuid.uuid4().hex[:8]}"
        path.write_text(original.replace("env: {TARGET: warehouse}", f"env: {{TARGET: {target}}}"))
        return target

    target = edit()
    ours, out = p.tool("run", "--pipeline", "example_etl", "--timeout", "600")
    fresh = f"load: done for {target}" in out
    target = edit()
    t0 = time.perf_counter()
    p.tool("render")
    p.tool("build", "--quiet", "--full-tests")
    p.tool("down")
    p.tool("up")
    _, out = p.tool("run", "--pipeline", "example_etl", "--timeout", "600")
    naive = time.perf_counter() - t0
    print(f"  pipeline edit -> make run: {ours:.1f}s; naive {naive:.1f}s", flush=True)
    return {"ours": ours, "naive": naive, "fresh": fresh, "naive_fresh": f"load: done for {target}" in out}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-stack", action="store_true", help="skip the pipeline case (no local stack)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-loop-"))
    stack_project = f"bench-loop-{uuid.uuid4().hex[:6]}"
    p = Project(project_copy(work / "repo"), stack_project)
    stack_up = False
    try:
        print("bench/loop: warming up (a first make build of the copy: its record and build cache)", flush=True)
        warm, out = p.tool("build", "--quiet")
        print(f"  first build: {warm:.1f}s ({timing_line(out)})", flush=True)
        cases = [image_case(p, "plugin edit -> tested image", "plugins/ml_platform_plugin.py"),
                 image_case(p, "operator edit -> tested image", "operators/ml_platform/flavors.py")]
        pipe = None
        if not args.no_stack:
            p.tool("up")
            stack_up = True
            pipe = pipeline_case(p)
        print()
        print(f"bench/loop ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end)")
        print(f"  {'case':34} {'ours':>7} {'naive':>7} {'ratio':>6}  goal")
        for c in cases:
            print(f"  {c['name']:34} {c['ours']:6.1f}s {c['naive']:6.1f}s {c['ours'] / c['naive']:5.2f}x  <= 10 s")
            print(f"      ours:  {c['timing']}")
            print(f"      naive: build {c['naive_build']:.1f}s + full image suite {c['suite']:.1f}s ({c['suite_summary']})")
        suite = min(c["suite"] for c in cases)
        print(f"  {'full image suite (pytest)':34} {suite:6.1f}s {'':7} {'':6}  <= 25 s")
        if pipe:
            print(f"  {'pipeline edit -> make run result':34} {pipe['ours']:6.1f}s {pipe['naive']:6.1f}s "
                  f"{pipe['ours'] / pipe['naive']:5.2f}x  <= 15 s")
            print(f"      the run showed the edit: ours {'yes' if pipe['fresh'] else 'NO (previous DAG version ran)'}, "
                  f"naive {'yes' if pipe['naive_fresh'] else 'NO'}")
            print("      naive: render + build --full-tests + down + up + run")
    finally:
        if stack_up:
            p.tool("down", "--volumes", check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
