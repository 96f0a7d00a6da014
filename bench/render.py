#!/usr/bin/env python3
"""bench/render: `make render` on large inputs, and the job ordering against the old algorithm.

Cases, each in a fresh temporary repository (flavors.yaml and templates/ copied from this one):
  one-big    one pipeline of --jobs jobs (default 5,000) in one dependency chain whose head is last
             in the file (the worst case of the old ordering); goal < 5 s
  many       --pipelines pipelines (default 2,000) of 5 jobs each; goal < 10 s
Each is timed as `python build.py render` end to end (a subprocess, as `make render` runs it),
the median of --runs runs.

Then, in this process: rendering --small-n pipelines with one Jinja environment per run against one per
pipeline (the old behaviour: the template compiled again for each), and, on the same chain shape, the job ordering (render._order) against the
old algorithm (a rescan of the job list per placed job, `in` on a list: cubic), for --old-sizes
job counts, and the peak memory (ru_maxrss) of the render subprocesses. Nothing is asserted.
Run: make bench-render [ARGS="--jobs 5000 --pipelines 2000 --old-sizes 250,500,1000"].
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from platformctl.pipelines.model import PipelineV1 as Pipeline  # noqa: E402 - chain() writes version 1
from platformctl.pipelines.render import _order  # noqa: E402
from tests.unit.pipelines.test_graph import old_order  # noqa: E402 - the test's reference ordering

HEAD = """version: 1
dag: {{name: {name}, schedule: "@daily"}}
defaults: {{docker_image: registry.local/ml/bench:1.0.0, resource_flavor: cpu-small}}
jobs:
"""


def chain(n: int, name: str = "big") -> str:
    """j00000 depends on j00001, ... : the only job ready first is the last one in the file."""
    w = len(str(n))
    lines = [HEAD.format(name=name)]
    for i in range(n):
        dep = f", depends_on: [j{i + 1:0{w}d}]" if i + 1 < n else ""
        lines.append(f"  j{i:0{w}d}: {{command: [run]{dep}}}\n")
    return "".join(lines)


def small(k: int) -> str:
    return HEAD.format(name=f"p{k:05d}") + "".join(
        f"  s{i}: {{command: [run]{', depends_on: [s' + str(i - 1) + ']' if i else ''}}}\n" for i in range(5))


def repo_with(files: dict[str, str]) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="bench-render-"))
    shutil.copy(ROOT / "flavors.yaml", tmp)
    shutil.copytree(ROOT / "templates", tmp / "templates")
    (tmp / "pipelines").mkdir()
    for name, text in files.items():
        (tmp / "pipelines" / name).write_text(text)
    return tmp


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed_render(repo: Path, runs: int) -> tuple[float, list[float], float]:
    """(median wall s, wall times, median CPU s): CPU time too, since the machine may be shared."""
    times, cpu = [], []
    env = {**os.environ, "PLATFORM_ROOT": str(repo)}
    for _ in range(runs):
        shutil.rmtree(repo / "dags", ignore_errors=True)  # every run writes every file
        c0, t0 = _child_cpu(), time.perf_counter()
        p = subprocess.run([sys.executable, str(ROOT / "build.py"), "render"], env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        cpu.append(_child_cpu() - c0)
        if p.returncode != 0:
            sys.exit(f"render failed in {repo}:\n{p.stderr[-2000:]}")
    return statistics.median(times), times, statistics.median(cpu)


def pipeline(n: int) -> Pipeline:
    from ml_platform.yamlsafe import loads

    data, _ = loads(chain(n).encode())
    return Pipeline.model_validate(data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=5000)
    ap.add_argument("--pipelines", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--small-n", type=int, default=200, help="pipelines for the template-environment comparison")
    ap.add_argument("--old-sizes", default="250,500,1000", help="job counts for the old ordering (cubic: "
                                                                "1,000 takes seconds, 2,000 tens of seconds)")
    a = ap.parse_args()

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"medians of {a.runs} runs")
    big = repo_with({"big.yaml": chain(a.jobs)})
    size = (big / "pipelines" / "big.yaml").stat().st_size
    med, all_, cpu = timed_render(big, a.runs)
    print(f"one-big : 1 pipeline x {a.jobs} jobs ({size} bytes): make render {med:.2f} s wall, {cpu:.2f} s CPU "
          f"(runs {', '.join(f'{t:.2f}' for t in all_)}); goal < 5 s: {'met' if med < 5 else 'NOT met'}")
    many = repo_with({f"p{k:05d}.yaml": small(k) for k in range(a.pipelines)})
    med, all_, cpu = timed_render(many, a.runs)
    print(f"many    : {a.pipelines} pipelines x 5 jobs: make render {med:.2f} s wall, {cpu:.2f} s CPU "
          f"(runs {', '.join(f'{t:.2f}' for t in all_)}); goal < 10 s: {'met' if med < 10 else 'NOT met'}")
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak memory of a render subprocess: {rss:.0f} MiB")
    shutil.rmtree(big)
    shutil.rmtree(many)

    print(f"template environment, {a.small_n} 5-job pipelines rendered in this process:")
    from platformctl.pipelines import render as r
    from platformctl.pipelines.validate import check

    tpl = ROOT / "templates" / "dag.py.j2"
    checked = [check(f"pipelines/p{k}.yaml", small(k).encode(), ["cpu-small"]) for k in range(a.small_n)]
    t0 = time.perf_counter()
    for c in checked:
        r.render_one(c, tpl)
    t_new = time.perf_counter() - t0
    cached = r._env
    r._env = cached.__wrapped__  # the old behaviour: a new Environment (and template compile) per pipeline
    try:
        t0 = time.perf_counter()
        for c in checked:
            r.render_one(c, tpl)
        t_old = time.perf_counter() - t0
    finally:
        r._env = cached
    print(f"  one environment per run {t_new:.2f} s, one per pipeline (old) {t_old:.2f} s: old/new "
          f"{t_old / t_new:.1f}x")

    print("job ordering alone (render._order vs the old rescan), chain with its head last in the file:")
    for n in [int(x) for x in a.old_sizes.split(",") if x] + [a.jobs]:
        p = pipeline(n)
        t0 = time.perf_counter()
        new = _order(p)
        t_new = time.perf_counter() - t0
        if n in (a.jobs,) and str(n) not in a.old_sizes.split(","):
            print(f"  {n:6d} jobs: new {t_new * 1000:8.1f} ms   old: not run (cubic; pass it in --old-sizes)")
            continue
        t0 = time.perf_counter()
        old = old_order(p)
        t_old = time.perf_counter() - t0
        same = "same order" if old == new else "DIFFERENT ORDER"
        print(f"  {n:6d} jobs: new {t_new * 1000:8.1f} ms   old {t_old * 1000:10.1f} ms   "
              f"old/new {t_old / max(t_new, 1e-9):8.0f}x   {same}")


if __name__ == "__main__":
    main()
