#!/usr/bin/env python3
"""bench/build: the project's image against a naive `FROM base; COPY requirements.txt; RUN pip install -r`
image from the same lock, in one run, for three cases:

  cold      no build cache at all (builder cache pruned before each build); run --cold-runs times,
            alternating naive and project, and the medians compared (this network varies a lot)
  first     the same, on a machine that has not made the uv tools image yet
  lock      after adding one package to the team lock
  plugin    after changing one plugin file

Prints times, image sizes and ratios; nothing is asserted. Needs a Docker engine and the base image.
Run: make bench-build (after make build: it uses what make build resolved on this machine). Takes several minutes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from platformctl import machine  # noqa: E402
from platformctl.config import collect_overrides, load_config  # noqa: E402
from platformctl.image.build import build_plan  # noqa: E402
from platformctl.engine import DockerEngine  # noqa: E402
from platformctl.image.uv_image import LOCAL_NAME as LOCAL_UV  # noqa: E402
from platformctl.lock import header as hdr  # noqa: E402
from platformctl.lock.core import lock_filename  # noqa: E402
from platformctl.record import BuildRecord  # noqa: E402

NAIVE = """FROM {base}
COPY requirements.txt /tmp/requirements.txt
RUN --mount=type=secret,id=ca_bundle python3 -m venv /opt/venv && \\
    PIP_CERT=/run/secrets/ca_bundle /opt/venv/bin/pip install -r /tmp/requirements.txt
COPY operators /src/operators
RUN --mount=type=secret,id=ca_bundle PIP_CERT=/run/secrets/ca_bundle /opt/venv/bin/pip install --no-deps /src/operators
COPY plugins /opt/airflow/plugins
COPY dags /opt/airflow/dags
COPY flavors.yaml /opt/airflow/platform/flavors.yaml
ENV PATH=/opt/venv/bin:$PATH AIRFLOW_HOME=/opt/airflow
"""


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def naive_requirements(repo: Path, python: str) -> str:
    """airflow + team locks merged into one hashed requirements.txt (team's duplicates dropped)."""
    seen, out = set(), []
    for s in ("airflow", "team"):
        body = hdr.split((repo / "requirements" / lock_filename(s, python)).read_text())[2]
        block: list[str] = []
        for line in body.splitlines() + [""]:
            if line and not line.startswith((" ", "#")):
                if block and block[0].split("==")[0] not in seen:
                    seen.add(block[0].split("==")[0])
                    out.extend(block)
                block = [line]
            elif line.startswith("    --hash") and block:
                block.append(line)
        if block and block[0].split("==")[0] not in seen:
            seen.add(block[0].split("==")[0])
            out.extend(block)
    return "\n".join(out) + "\n"


class Bench:
    def __init__(self, repo: Path, engine: DockerEngine, cfg, ca: str | None):
        self.repo, self.engine, self.cfg, self.ca = repo, engine, cfg, ca
        self.base = cfg.image.resolved_base_image(cfg.airflow_version)
        self.made: set[str] = set()  # images this run built, removed at the end

    def prune(self) -> None:
        sh([self.engine.cli, "builder", "prune", "-af"])

    def naive(self, tag: str) -> float:
        (self.repo / "requirements.txt").write_text(naive_requirements(self.repo, self.cfg.image.python))
        (self.repo / "naive.Dockerfile").write_text(NAIVE.format(base=self.base))
        cmd = [self.engine.cli, "build", "-f", "naive.Dockerfile", "-t", tag]
        if self.ca:
            cmd += ["--secret", f"id=ca_bundle,src={self.ca}"]
        # the naive build sees the whole repo as context, like a plain `docker build .`
        (self.repo / ".dockerignore").unlink(missing_ok=True)
        t0 = time.perf_counter()
        sh([*cmd, "."], cwd=self.repo, env={**os.environ, "DOCKER_BUILDKIT": "1"})
        dt = time.perf_counter() - t0
        self.made.add(sh([self.engine.cli, "image", "inspect", "--format", "{{.Id}}", tag]).stdout.strip())
        sh(["git", "checkout", "-q", ".dockerignore"], cwd=self.repo)
        return dt

    def project(self) -> tuple[float, str]:
        env = {**os.environ, "PLATFORM_ROOT": str(self.repo)}
        t0 = time.perf_counter()
        sh([sys.executable, str(ROOT / "build.py"), "build", "--no-test", "--quiet", "--no-reuse"], env=env, cwd=self.repo)
        dt = time.perf_counter() - t0
        image_id = BuildRecord.load(self.repo).image_id
        self.made.add(image_id)
        return dt, image_id

    def size(self, ref: str) -> int:
        return int(sh([self.engine.cli, "image", "inspect", ref, "--format", "{{.Size}}"]).stdout.strip())

    def commit(self, msg: str) -> None:
        sh(["git", "add", "-A"], cwd=self.repo)
        sh(["git", "-c", "user.email=bench@local", "-c", "user.name=bench", "commit", "-qm", msg], cwd=self.repo)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cold-runs", type=int, default=3,
                    help="cold builds of each kind, alternating; the medians are compared (default 3)")
    opts = ap.parse_args()
    cfg = load_config(ROOT, collect_overrides())
    engine = DockerEngine.detect(cfg.image.docker, cfg.image.engine)
    work = Path(tempfile.mkdtemp(prefix="bench-build-"))
    repo = work / "repo"
    sh(["git", "clone", "-q", str(ROOT), str(repo)])
    machine.copy_to(ROOT, repo)  # the base image, CLI and CA bundle make build resolved here
    b = Bench(repo, engine, cfg, cfg.image.build_secrets.get("ca_bundle"))
    rows, cold = [], []
    try:
        # First build on this machine: no build cache and no uv tools image either (it is made once per
        # uv pin and base image, then kept like the base image).
        uv_ref = build_plan(repo, cfg, engine)[0].build_args.get("UV_IMAGE")
        if uv_ref and uv_ref.startswith(LOCAL_UV + ":"):
            subprocess.run([engine.cli, "rmi", "-f", uv_ref], capture_output=True)
        b.prune()
        n_first = b.naive("bench-naive:cold")
        b.prune()
        p_first = b.project()[0]
        # Cold: the builder cache pruned before every build (the base and uv images stay).
        for _ in range(opts.cold_runs):
            b.prune()
            n = b.naive("bench-naive:cold")
            b.prune()
            p, p_img = b.project()
            cold.append((n, p))
        rows.append((f"cold (median of {len(cold)})", statistics.median(n for n, _ in cold),
                     statistics.median(p for _, p in cold)))
        rows.append(("first build (+uv image)", n_first, p_first))
        sizes = (b.size("bench-naive:cold"), b.size(p_img))

        team_in = repo / "requirements/team.in"
        team_in.write_text(team_in.read_text() + "humanize\n")
        env = {**os.environ, "PLATFORM_ROOT": str(repo)}
        sh([sys.executable, str(ROOT / "build.py"), "lock"], env=env, cwd=repo)
        b.commit("bench: add a package")
        rows.append(("lock (+1 package)", b.naive("bench-naive:lock"), b.project()[0]))

        plugin = next((repo / "plugins").glob("*.py"), None) or (repo / "plugins/bench_plugin.py")
        plugin.write_text((plugin.read_text() if plugin.exists() else "") + f"\n# bench change {time.time()}\n")
        b.commit("bench: change a plugin")
        rows.append(("plugin file changed", b.naive("bench-naive:plugin"), b.project()[0]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if b.made:  # a run leaves ~10 images of 650 MB: do not fill the disk over repeated runs
            subprocess.run([engine.cli, "rmi", "-f", *sorted(b.made)], capture_output=True)

    print(f"bench/build: base {b.base}, Python {cfg.image.python}, engine {engine.cli} [{engine.mode}]")
    print(f"  {'case':26} {'naive s':>8} {'project s':>10} {'ratio':>7}")
    for name, n, p in rows:
        print(f"  {name:26} {n:8.1f} {p:10.1f} {p / n:7.2f}x")
    print(f"  {'image size MB':26} {sizes[0] / 1e6:8.0f} {sizes[1] / 1e6:10.0f} {sizes[1] / sizes[0]:7.2f}x")
    print("  cold runs (naive, project): " + ", ".join(f"({n:.1f}, {p:.1f})" for n, p in cold))
    print("goals: cold <= 0.25x, lock change <= 0.15x, plugin change < 3 s, size <= 1.0x")


if __name__ == "__main__":
    main()
