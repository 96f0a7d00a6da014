#!/usr/bin/env python3
"""bench/studio: the pipeline studio in headless Debian Chromium (selenium, the browser tests' helper).

Figures, each the median of --runs runs, with a ratio against a naive alternative measured in the same run:
  draw       a generated --jobs-job pipeline (default 200) opened: click to every node laid out (elkjs),
             drawn and fitted (the page's own record, window.__studio.layouts); against example_etl's 4
             jobs; goal < 1 s
  validate   one edit (set a job's retries) through POST /api/edit, which re-validates with the `make
             render` validator and answers the document and its problems, timed from Python over HTTP;
             against `python build.py render` of the same project as a subprocess (what checking a
             pipeline costs without the studio); on example_etl and on the big pipeline; goal < 100 ms
  open       `python build.py studio` started as a subprocess, to its URL printed, to the page loaded, to
             example_etl's graph drawn; against the same `build.py render` subprocess; goal < 2 s
Everything runs on a temporary copy of this project (pipelines/, flavors, schemas, templates, environments).
Nothing is asserted. Run: make bench-studio [ARGS="--jobs 200 --runs 5"].
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from platformctl.studio.server import make_server  # noqa: E402
from tests.integration.studio import browser  # noqa: E402 - the browser tests' Chromium helper
from tests.integration.studio.conftest import copy_project  # noqa: E402


def big_pipeline(n: int) -> str:
    """n jobs in 10 lanes; each job after the previous one of its lane, every 4th also after the lane
    beside it (fan-in across lanes), so the layout has ~n/10 layers and crossing edges to route."""
    lines = ["version: 1", "dag: {name: bench_studio, schedule: '@daily', tags: [bench]}",
             "defaults: {docker_image: registry.local/ml/bench:1.0.0, resource_flavor: cpu-small}", "jobs:"]
    lanes = 10
    for i in range(n):
        deps = []
        if i >= lanes:
            deps.append(f"job_{i - lanes:03d}")
            if i % 4 == 0:
                deps.append(f"job_{i - lanes + (1 if (i % lanes) < lanes - 1 else -1):03d}")
        lines.append(f"  job_{i:03d}:")
        lines.append(f"    command: [python3, /app/step.py, '{i}']")
        if i % 25 == 7:
            lines.append("    resource_flavor: cpu-large")
        if deps:
            lines.append(f"    depends_on: [{', '.join(deps)}]")
    return "\n".join(lines) + "\n"


def render_subprocess(project: Path) -> float:
    env = {**os.environ, "PLATFORM_ROOT": str(project)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "build.py"), "render"], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"bench: build.py render failed: {proc.stderr.strip()[-300:]}")
    return dt


class Api:
    def __init__(self, url: str):
        parts = urlsplit(url)
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.token = parse_qs(parts.query)["token"][0]

    def post(self, name: str, body: dict) -> dict:
        data = json.dumps(body).encode()
        req = urllib.request.Request(f"{self.base}/api/{name}", data=data, method="POST", headers={
            "Content-Type": "application/json", "X-Studio-Token": self.token})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)


def draw_once(driver, file: str, n: int, other: str) -> float:
    """Time click -> n nodes drawn and fitted (after opening `other` first if `file` is the open one, so
    that `file` is laid out afresh)."""
    current = driver.execute_script("return document.body.dataset.file || null;")
    for f, count, timed in ((other, None, False), (file, n, True)):
        if not timed and current != file:
            continue
        done = driver.execute_script("return window.__studio.layouts.length;")
        t0 = driver.execute_script(
            "const t = performance.now(); document.querySelector(`a[data-file=\"${arguments[0]}\"]`).click(); return t;", f)
        want = f" && window.__studio.layouts.at(-1).n === {count}" if count else ""
        browser.wait_for(driver, f"window.__studio.layouts.length > {done}{want} && document.body.dataset.file === "
                                 f"{json.dumps(f)}", timeout=60, what=f"{f} drawn")
        rec = driver.execute_script("return window.__studio.layouts.at(-1);")
        if timed:
            nodes = driver.execute_script("return document.querySelectorAll('.react-flow__node').length;")
            if nodes != n or rec["drawn"] != n:
                raise SystemExit(f"bench: {file}: {nodes} nodes on the page, {rec['drawn']} drawn, expected {n}")
            return (rec["at"] - t0) / 1000
    raise AssertionError


def open_once(project: Path) -> dict:
    """`build.py studio` as a user starts it, to example_etl's graph drawn in a fresh browser."""
    env = {**os.environ, "PLATFORM_ROOT": str(project), "PYTHONUNBUFFERED": "1"}
    driver = browser.start()  # the browser's own start-up is not the studio's: started before the clock
    try:
        driver.get("about:blank")
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(ROOT / "build.py"), "studio"], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            url = None
            for line in proc.stdout:
                if "open http" in line:
                    url = line.split("open ", 1)[1].strip()
                    break
            if url is None:
                raise SystemExit(f"bench: build.py studio printed no URL: {proc.stderr.read()[-300:]}")
            t_url = time.perf_counter()
            driver.get(url)
            browser.wait_for(driver, "document.querySelector('a[data-file=\"pipelines/example_etl.yaml\"]')",
                             timeout=60, what="the pipeline list")
            t_list = time.perf_counter()
            driver.find_element("css selector", 'a[data-file="pipelines/example_etl.yaml"]').click()
            browser.wait_for(driver, "window.__studio.layouts.length && window.__studio.layouts.at(-1).n === 4",
                             timeout=60, what="example_etl drawn")
            t_graph = time.perf_counter()
        finally:
            proc.terminate()
            proc.wait(10)
    finally:
        driver.quit()
    return {"url": t_url - t0, "list": t_list - t0, "graph": t_graph - t0}


def fmt(ms: float) -> str:
    return f"{ms:7.1f} ms" if ms < 10_000 else f"{ms / 1000:7.2f} s "


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if not browser.available():
        print("bench-studio: no headless browser (apt-get install chromium chromium-driver)", file=sys.stderr)
        return 6

    with tempfile.TemporaryDirectory(prefix="bench-studio-") as tmp:
        project = copy_project(Path(tmp) / "project")
        big = "pipelines/bench_studio.yaml"
        (project / big).write_text(big_pipeline(args.jobs))
        print(f"bench-studio: {args.runs} runs each, medians; {args.jobs}-job pipeline in 10 lanes; "
              f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")

        httpd, url = make_server(project)
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        driver = browser.start()
        try:
            driver.get(url)
            browser.wait_for(driver, "document.querySelector('a[data-file]')", what="the pipeline list")
            etl = "pipelines/example_etl.yaml"
            draw_once(driver, etl, 4, big)  # warm-up: the bundle's code compiled, ELK's worker loaded
            big_t = [draw_once(driver, big, args.jobs, etl) for _ in range(args.runs)]
            small_t = [draw_once(driver, etl, 4, big) for _ in range(args.runs)]
            layout_ms = statistics.median(r["layoutMs"] for r in driver.execute_script(
                "return window.__studio.layouts;") if r["n"] == args.jobs)
        finally:
            driver.quit()

        api = Api(url)
        val: dict[str, list[float]] = {}
        for file, job in ((etl, "train"), (big, f"job_{args.jobs // 2:03d}")):
            api.post("open", {"file": file})
            times = []
            for i in range(args.runs * 4):
                t0 = time.perf_counter()
                state = api.post("edit", {"file": file, "op": {"op": "set", "path": ["jobs", job, "retries"], "value": i % 3}})
                times.append(time.perf_counter() - t0)
                if not state.get("valid"):
                    raise SystemExit(f"bench: {file} became invalid: {state.get('problems')}")
            val[file] = times
        httpd.shutdown()
        httpd.server_close()
        render_t = [render_subprocess(project) for _ in range(args.runs)]

        opens = [open_once(project) for _ in range(args.runs)]

    draw_big, draw_small = statistics.median(big_t) * 1000, statistics.median(small_t) * 1000
    v_small, v_big = (statistics.median(val[f]) * 1000 for f in (etl, big))
    render_ms = statistics.median(render_t) * 1000
    open_ms = {k: statistics.median(o[k] for o in opens) * 1000 for k in ("url", "list", "graph")}
    rows = [
        (f"draw {args.jobs} jobs (click to drawn, fitted)", draw_big, "goal < 1 s",
         f"{draw_big / draw_small:5.1f}x example_etl's 4 jobs ({fmt(draw_small).strip()}); elkjs layout alone "
         f"{layout_ms:.0f} ms"),
        ("validate one edit, example_etl (API)", v_small, "goal < 100 ms",
         f"{render_ms / v_small:5.1f}x faster than build.py render subprocess ({fmt(render_ms).strip()})"),
        (f"validate one edit, {args.jobs} jobs (API)", v_big, "goal < 100 ms",
         f"{render_ms / v_big:5.1f}x faster than build.py render subprocess"),
        ("open: build.py studio to example_etl drawn", open_ms["graph"], "goal < 2 s",
         f"{open_ms['graph'] / render_ms:5.1f}x one build.py render subprocess; URL printed at "
         f"{open_ms['url']:.0f} ms, pipeline list at {open_ms['list']:.0f} ms"),
    ]
    for name, ms, goal, ratio in rows:
        print(f"  {name:<46} {fmt(ms)}  ({goal})  {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
