#!/usr/bin/env python3
"""bench/studio: the pipeline studio in headless Debian Chromium (selenium, the browser tests' helper).

Figures, each the median of --runs runs, with a ratio against a naive alternative measured in the same run:
  draw       a generated --jobs-job pipeline (default 200) opened: click to every node laid out (elkjs),
             drawn and fitted (the page's own record, window.__studio.layouts); against example_etl's 4
             jobs; goal < 1 s
  draw+states the same, with a run's state on every node: the studio's own run code (runs.Runner and its
             Airflow client) reads a LOCAL STAND-IN for Airflow's API (tests/unit/studio/airflow_standin.py:
             health, the last run, the task-instance list paged at 100 as Airflow's default), which answers
             --jobs task instances in 8 states; click to all nodes laid out, fitted and each state drawn
             (window.__studio.states); against the same draw without states (no stack); goal < 1 s
  validate   one edit (set a job's retries) through POST /api/edit, which re-validates with the `make
             render` validator and answers the document and its problems, timed from Python over HTTP;
             against `python build.py render` of the same project as a subprocess (what checking a
             pipeline costs without the studio); on example_etl and on the big pipeline; goal < 100 ms
  open       `python build.py studio` started as a subprocess, to its URL printed, to the page loaded, to
             example_etl's graph drawn; against the same `build.py render` subprocess; goal < 2 s
With the real local stack (skipped with --no-stack; it needs `make build`'s image and build record; the
stack is its own compose project, started before and removed after):
  latency    a 12-job pipeline (4 lanes of 3 jobs sleeping 3-6 s, one 15 s) run from the studio's Run
             button; for every task instance, Airflow's own timestamp of the change (queued_when, start_date,
             end_date) to the frame in which the page drew that state on the node (window.__studio.states,
             epoch ms; one clock: the containers share the host's); goal <= 2 s. Naive: the same page
             reloaded at a fixed 1 s interval (a full reload: page, pipeline, layout, status), and a
             per-task poller (below), on their own runs
  requests   every request to Airflow's API server counted by a counting proxy in front of it (the studio's
             Runner reads Airflow through it; kinds: task-instance list, run, log, one task instance), per
             second over the live part of a run: the graph alone, and while a running job's log is followed;
             goal <= 1 per second per open pipeline. Naive: one GET per task instance per second (how a page
             polling each node would ask), through the same proxy
Everything runs on a temporary copy of this project. Nothing is asserted.
Run: make bench-studio [ARGS="--jobs 200 --runs 5 --no-stack"].
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from platformctl.studio.runs import Runner  # noqa: E402
from platformctl.studio.server import make_server  # noqa: E402
from tests.integration.studio import browser  # noqa: E402 - the browser tests' Chromium helper
from tests.integration.studio.conftest import copy_project, full_copy  # noqa: E402
from tests.unit.studio.airflow_standin import StandinAirflow, ti  # noqa: E402 - the stand-in for Airflow's API


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


# -- the draw with a run's states (a stand-in for Airflow's API) -------------------------------------------
STANDIN_STATES = ("success", "success", "success", "success", "failed", "upstream_failed", "running", "queued",
                  None, "skipped", "up_for_retry", "success")


def standin_tis(n: int) -> list[dict]:
    return [ti(f"job_{i:03d}", STANDIN_STATES[i % len(STANDIN_STATES)], 1 + (i % 5 == 4), 2.0 + i % 7)
            for i in range(n)]


def draw_with_states_once(driver, runner: Runner, file: str, n: int) -> float:
    """Time click -> n nodes laid out, drawn, fitted and every node's run state drawn (another pipeline is
    open, so `file` is laid out afresh). The runner's per-pipeline cache is dropped, so each open asks the
    stand-in as a first open does (health, the last run, its task-instance list)."""
    if driver.execute_script("return document.body.dataset.file || null;") == file:
        raise SystemExit(f"bench: open another pipeline than {file} first")
    runner.jobs.clear()
    done = driver.execute_script("return window.__studio.layouts.length;")
    k = driver.execute_script("return window.__studio.states.length;")
    t0 = driver.execute_script(
        "const t = performance.now(); document.querySelector(`a[data-file=\"${arguments[0]}\"]`).click(); return t;", file)
    browser.wait_for(driver, f"window.__studio.layouts.length > {done} && window.__studio.layouts.at(-1).n === {n} && "
                             f"document.body.dataset.file === {json.dumps(file)} && "
                             f"new Set(window.__studio.states.slice({k}).map((e) => e.job)).size >= {n}",
                     timeout=60, what=f"{file} drawn with states")
    rec = driver.execute_script("return window.__studio.layouts.at(-1);")
    states = driver.execute_script(f"return window.__studio.states.slice({k});")
    drawn = driver.execute_script("return document.querySelectorAll('.react-flow__node .runinfo').length;")
    if drawn != n:
        raise SystemExit(f"bench: {file}: {drawn} nodes with a state drawn, expected {n}")
    last_state = max(e["t"] for e in states)
    return (max(rec["at"], last_state) - t0) / 1000


# -- the real local stack: a counting proxy in front of Airflow's API server --------------------------------
HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
       "transfer-encoding", "upgrade", "content-length", "host"}


def kind_of(path: str) -> str:
    p = urlsplit(path).path
    if re.search(r"/taskInstances/[^/]+/logs/", p):
        return "log"
    if p.endswith("/taskInstances"):
        return "ti_list"
    if "/taskInstances/" in p:
        return "ti_one"
    if re.search(r"/dagRuns/[^/]+$", p):
        return "run"
    if p.endswith("/monitor/health"):
        return "health"
    return "other"


class CountingProxy:
    """Forwards every request to Airflow's API server and records each one as it arrives (epoch seconds,
    kind): what the studio costs the API server, counted on the server's side of the studio. It also keeps
    what each task-instance list answered (when asked, the states): when the API first showed a change."""

    def __init__(self, target: str):
        self.target = urlsplit(target)
        self.seen: list[tuple[float, str]] = []
        self.answers: list[tuple[float, float, dict[str, str]]] = []  # asked, answered, task id -> state
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def forward(self):
                asked, kind = time.time(), kind_of(self.path)
                with outer.lock:
                    outer.seen.append((asked, kind))
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                up = http.client.HTTPConnection(outer.target.hostname, outer.target.port, timeout=120)
                try:
                    up.request(self.command, self.path, body=body, headers={
                        **{k: v for k, v in self.headers.items() if k.lower() not in HOP}, "Host": outer.target.netloc})
                    r = up.getresponse()
                    data = r.read()
                finally:
                    up.close()
                if kind == "ti_list" and r.status == 200:
                    outer.keep(asked, data, r.getheader("Content-Encoding"))
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = forward

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def keep(self, asked: float, data: bytes, encoding: str | None) -> None:
        import gzip

        body = json.loads(gzip.decompress(data) if encoding == "gzip" else data)
        states = {t["task_id"]: t.get("state") or "none" for t in body.get("task_instances", [])}
        with self.lock:
            self.answers.append((asked, time.time(), states))

    def first_shown(self, since: float) -> dict[tuple[str, str], tuple[float, float, float]]:
        """(job, state) -> when the first task-instance list that showed it was asked for, when the API
        server's answer to it came back, and when the list before it (which did not show it yet) was asked:
        the change became visible in the API in between."""
        out: dict[tuple[str, str], tuple[float, float, float]] = {}
        with self.lock:
            answers = sorted(a for a in self.answers if a[0] >= since)
        for i, (asked, answered, states) in enumerate(answers):
            for job, st in states.items():
                out.setdefault((job, st), (asked, answered, answers[i - 1][0] if i else since))
        return out

    def between(self, t0: float, t1: float, kinds: set[str] | None = None) -> list[tuple[float, str]]:
        with self.lock:
            return [(t, k) for t, k in self.seen if t0 <= t <= t1 and (kinds is None or k in kinds)]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


LIVE_DAG = "bench_live"
LIVE_FILE = f"pipelines/{LIVE_DAG}.yaml"
FOLLOWED = "lane0_2"  # the 15 s job whose log the second studio run follows


def live_pipeline() -> str:
    """4 lanes of 3 jobs, each sleeping 3-6 s (one 15 s, printing a line a second): state changes spread
    over the run, at every phase of the page's poll."""
    lines = ["version: 1", f"dag: {{name: {LIVE_DAG}, schedule: null, tags: [bench]}}",
             "defaults: {docker_image: 'ml-platform/etl-job:0.1.0', resource_flavor: cpu-small}", "jobs:"]
    for lane in range(4):
        for step in range(1, 4):
            name = f"lane{lane}_{step}"
            secs = 15 if name == FOLLOWED else 3 + (lane * 3 + step) % 4
            code = f"import time; [print(i, flush=True) or time.sleep(1) for i in range({secs})]"
            lines.append(f"  {name}:")
            lines.append(f"    command: [python3, -c, '{code}']")
            if step > 1:
                lines.append(f"    depends_on: [lane{lane}_{step - 1}]")
    return "\n".join(lines) + "\n"


def epoch(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() if iso else None


CHANGES = (("queued", "queued_when"), ("running", "start_date"), ("success", "end_date"))


def changes(tis: list[dict], seen: dict[tuple[str, str], float]) -> list[dict]:
    """Each change (queued, running, success) Airflow timestamped on a task instance: when (its field),
    and when it was first seen (None: never, a state shorter than the poll)."""
    out = []
    for t in tis:
        for state, field in CHANGES:
            at = epoch(t.get(field))
            if at is None or (state == "success" and t.get("state") != "success"):
                continue
            out.append({"job": t["task_id"], "state": state, "at": at, "seen": seen.get((t["task_id"], state))})
    return out


def latencies(tis: list[dict], seen: dict[tuple[str, str], float]) -> tuple[list[float], int, int]:
    """seen - Airflow's time of each change seen; how many were never seen; how many there were."""
    cs = changes(tis, seen)
    lat = [c["seen"] - c["at"] for c in cs if c["seen"] is not None]
    return lat, len(cs) - len(lat), len(cs)


def first_seen(entries: list[dict], since: float) -> dict[tuple[str, str], float]:
    """(job, state) -> the first epoch second the page drew it, from window.__studio.states entries."""
    out: dict[tuple[str, str], float] = {}
    for e in sorted(entries, key=lambda e: e["at"]):
        at = e["at"] / 1000
        if at >= since:
            out.setdefault((e["job"], e["state"]), at)
    return out


def wait_final(direct, run_id: str, timeout: float = 900) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        run = direct.run(LIVE_DAG, run_id)
        if run.get("state") in ("success", "failed"):
            return run
        time.sleep(2)
    raise SystemExit(f"bench: run {run_id} did not finish within {timeout:.0f}s")


def studio_run(d, proxy: CountingProxy, direct, follow: str | None) -> dict:
    """Run from the studio's Run button; the page's drawn states and the proxy's requests while it is live."""
    mark = time.time()
    d.find_element("css selector", "#run").click()
    browser.wait_for(d, "document.querySelector('#run-dialog')", what="the run dialog")
    d.find_element("css selector", "#run-confirm").click()
    run_id = browser.wait_for(d, "window.__studio.run && window.__studio.run.run_id && window.__studio.run.stage === "
                                 "'running' && window.__studio.run.run_id", timeout=900, what="the DAG triggered")
    if follow:
        browser.wait_for(d, f"document.querySelector('.react-flow__node[data-id=\"{follow}\"] .jname')", what=follow)
        d.find_element("css selector", f'.react-flow__node[data-id="{follow}"] .jname').click()
        d.find_element("css selector", "#tab-log").click()
    browser.wait_for(d, "window.__studio.run && ['success', 'failed'].includes(window.__studio.run.run_state) && "
                        "!window.__studio.run.live", timeout=900, what="the run to finish on the page")
    run = wait_final(direct, run_id)
    tis = direct.task_instances(LIVE_DAG, run_id)
    seen = first_seen(d.execute_script("return window.__studio.states;"), mark)
    polls = proxy.between(mark, time.time(), {"ti_list", "run", "log"})
    t_first, t_last = polls[0][0], polls[-1][0]
    lat, missed, total = latencies(tis, seen)
    shown = proxy.first_shown(mark)
    detail = changes(tis, seen)
    for c in detail:  # when the API first showed it: Airflow's part (commit, answer) and the studio's part
        c["shown"], c["answered"], c["before"] = shown.get((c["job"], c["state"]), (None, None, None))
    out = {"run": run_id, "state": run.get("state"), "lat": lat, "missed": missed, "changes": total, "detail": detail,
           "window": t_last - t_first, "requests": len(polls),
           "kinds": {k: sum(1 for _, x in polls if x == k) for k in ("ti_list", "run", "log")}}
    if follow:
        f = next(t for t in tis if t["task_id"] == follow)
        a, b = epoch(f["start_date"]), epoch(f["end_date"])
        during = proxy.between(a, b, {"ti_list", "run", "log"})
        out["follow"] = {"window": b - a, "requests": len(during),
                         "logs": sum(1 for _, k in during if k == "log")}
    return out


def reload_run(d, url: str, api: Api, studio, proxy: CountingProxy, interval: float = 1.0) -> dict:
    """Naive: the studio page fully reloaded every `interval` seconds (start to start; at once when a load
    took longer): page, pipeline list, open, layout, status. A state counts as seen once drawn on a node of
    a fitted layout (the later of the state's frame and the layout's)."""
    mark = time.time()
    api.post("run-start", {"file": LIVE_FILE})
    end = time.monotonic() + 900
    while (job := studio.runner.jobs.get(LIVE_FILE)) is None or job.run_id is None:
        if job is not None and job.error:
            raise SystemExit(f"bench: the run did not start: {job.error}")
        if time.monotonic() > end:
            raise SystemExit("bench: the run was not triggered")
        time.sleep(0.2)
    run_id, t_trig = job.run_id, time.time()
    seen: dict[tuple[str, str], float] = {}
    loads = []
    while True:
        t0 = time.monotonic()
        d.get(url)
        browser.wait_for(d, f"document.querySelector('a[data-file=\"{LIVE_FILE}\"]')", timeout=60, what="the list")
        d.find_element("css selector", f'a[data-file="{LIVE_FILE}"]').click()
        st = browser.wait_for(d, "window.__studio.run && window.__studio.layouts.length && "
                                 "window.__studio.layouts.at(-1).n === 12 && window.__studio.run.run_id && "
                                 "new Set(window.__studio.states.map((e) => e.job)).size >= 12 && window.__studio.run",
                              timeout=60, what="a reload drawn with states")
        origin, layout_at, states = d.execute_script(
            "return [performance.timeOrigin, window.__studio.layouts.at(-1).at, window.__studio.states];")
        fitted = (origin + layout_at) / 1000
        for e in states:
            seen.setdefault((e["job"], e["state"]), max(e["at"] / 1000, fitted))
        loads.append(time.monotonic() - t0)
        if st["run_id"] == run_id and st["run_state"] in ("success", "failed"):
            break
        time.sleep(max(0.0, interval - (time.monotonic() - t0)))
    d.get("about:blank")
    return {"run": run_id, "seen": seen, "mark": mark, "t_trig": t_trig, "loads": loads,
            "requests": proxy.between(t_trig, time.time(), {"ti_list", "run", "log"})}


def per_task_run(direct, proxy: CountingProxy, interval: float = 1.0) -> dict:
    """Naive: one GET per task instance per `interval` (start to start), through the proxy, on a run
    triggered directly; what it saw when, for the same latency measure."""
    from platformctl.stack.api import AirflowAPI

    via = AirflowAPI(proxy.url, timeout=60)
    run_id = direct.trigger(LIVE_DAG, note="bench per-task polling")["dag_run_id"]
    tasks = [f"lane{lane}_{step}" for lane in range(4) for step in range(1, 4)]
    seen: dict[tuple[str, str], float] = {}
    t_first = time.time()
    while True:
        t0 = time.monotonic()
        states = {}
        for task in tasks:
            r = via._json("GET", f"/dags/{LIVE_DAG}/dagRuns/{run_id}/taskInstances/{task}", ok=(200, 404))
            states[task] = r.get("state")
            seen.setdefault((task, r.get("state") or "none"), time.time())
        if all(s in ("success", "failed", "upstream_failed", "skipped") for s in states.values()):
            break
        time.sleep(max(0.0, interval - (time.monotonic() - t0)))
    t_last = time.time()
    wait_final(direct, run_id)
    return {"run": run_id, "seen": seen, "tis": direct.task_instances(LIVE_DAG, run_id),
            "requests": proxy.between(t_first, t_last, {"ti_one"}), "window": t_last - t_first}


def live_section(args) -> list[tuple] | None:
    """The studio against the real local stack: state latency and the API server's requests, vs naive."""
    from platformctl.config import load_config
    from platformctl.services import stack as stack_service
    from platformctl.stack.api import AirflowAPI

    record = ROOT / "build" / "build-record.json"
    if not record.exists():
        print("  live figures: not measured (no build record: run make build)")
        return None
    image = json.loads(record.read_text())["image_id"]
    project_name = f"mlp-bench-studio-{uuid.uuid4().hex[:6]}"
    rows: list[tuple] = []
    with tempfile.TemporaryDirectory(prefix="bench-studio-live-") as tmp:
        project = full_copy(Path(tmp) / "project")
        (project / LIVE_FILE).write_text(live_pipeline())
        cfg = load_config(project)
        proxy = httpd = d = None
        try:
            t0 = time.perf_counter()
            up = stack_service.up(project, {}, stack_service.UpOptions(project=project_name, image=image),
                                  echo=lambda line: None)
            print(f"  local stack {project_name} up in {time.perf_counter() - t0:.0f} s (load "
                  f"{os.getloadavg()[0]:.1f})", flush=True)
            direct = AirflowAPI(up.url, timeout=60)
            proxy = CountingProxy(up.url)
            httpd, url = make_server(project)
            studio = httpd.loader.get()
            studio.runner = Runner(studio.root, project=project_name, image=image, airflow_url=proxy.url)
            threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
            d = browser.start()
            d.get(url)
            browser.wait_for(d, f"document.querySelector('a[data-file=\"{LIVE_FILE}\"]')", what="the pipeline list")
            d.find_element("css selector", f'a[data-file="{LIVE_FILE}"]').click()
            browser.wait_for(d, "window.__studio.layouts.length && window.__studio.layouts.at(-1).n === 12",
                             what=f"{LIVE_FILE} drawn")
            graph = studio_run(d, proxy, direct, follow=None)
            print(f"  studio run 1 (graph): {graph['state']}, state -> drawn median {statistics.median(graph['lat']):.2f} s, "
                  f"max {max(graph['lat']):.2f} s; load {os.getloadavg()[0]:.1f}", flush=True)
            followed = studio_run(d, proxy, direct, follow=FOLLOWED)
            print(f"  studio run 2 (a log followed): {followed['state']}, state -> drawn median "
                  f"{statistics.median(followed['lat']):.2f} s, max {max(followed['lat']):.2f} s; "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
            naive = reload_run(d, url, Api(url), studio, proxy)
            n_tis = direct.task_instances(LIVE_DAG, naive["run"])
            n_lat, n_missed, n_total = latencies(n_tis, naive["seen"])
            print(f"  naive reload run: {len(naive['loads'])} loads, median {statistics.median(naive['loads']):.2f} s "
                  f"each, load {os.getloadavg()[0]:.1f}", flush=True)
            per_task = per_task_run(direct, proxy)
            p_lat, p_missed, p_total = latencies(per_task["tis"], per_task["seen"])
            print(f"  naive per-task run: load {os.getloadavg()[0]:.1f}", flush=True)
        finally:
            if d is not None:
                d.quit()
            if httpd is not None:
                httpd.shutdown()
                httpd.server_close()
            if proxy is not None:
                proxy.close()
            stack_service.down(project, cfg, project_name, volumes=True, echo=lambda line: None)

    def lat(xs: list[float], missed: int, total: int) -> str:
        return (f"median {statistics.median(xs):.2f} s, p90 {sorted(xs)[int(0.9 * (len(xs) - 1))]:.2f} s, "
                f"max {max(xs):.2f} s over {len(xs)} changes ({missed} of {total} never drawn)")

    both = graph["lat"] + followed["lat"]
    rows.append(("state change in Airflow -> drawn (2 studio runs)", f"{statistics.median(both):.2f} s", "goal <= 2 s",
                 f"{lat(both, graph['missed'] + followed['missed'], graph['changes'] + followed['changes'])}"))
    detail = graph["detail"] + followed["detail"]
    for state, _ in CHANGES:
        xs = [c["seen"] - c["at"] for c in detail if c["state"] == state and c["seen"] is not None]
        n = sum(1 for c in detail if c["state"] == state)
        if xs:
            rows.append((f"  of which {state}", f"{statistics.median(xs):.2f} s", "", lat(xs, n - len(xs), n)))
    parts = [(c["shown"] - c["at"], c["seen"] - c["shown"], c["seen"] - max(c["at"], c["before"]))
             for c in detail if c["seen"] and c["shown"]]
    rows.append(("  visible in Airflow's API -> drawn (upper bound)", f"{statistics.median(p[2] for p in parts):.2f} s",
                 "goal <= 2 s", f"max {max(p[2] for p in parts):.2f} s: from the later of Airflow's time and the "
                 "last list that did not show it yet"))
    rows.append(("  split: Airflow's time -> the list that showed it", f"{statistics.median(p[0] for p in parts):.2f} s",
                 "", f"max {max(p[0] for p in parts):.2f} s (when that request was asked: Airflow's commit + the poll's wait)"))
    api_ms = [c["answered"] - c["shown"] for c in detail if c["seen"] and c["shown"]]
    rest = [c["seen"] - c["answered"] for c in detail if c["seen"] and c["shown"]]
    rows.append(("  split: that list asked -> answered (API server)", f"{statistics.median(api_ms):.2f} s",
                 "", f"max {max(api_ms):.2f} s"))
    rows.append(("  split: answered -> drawn (studio server + page)", f"{statistics.median(rest):.2f} s",
                 "", f"max {max(rest):.2f} s"))
    late = sorted((c for c in detail if c["seen"] and c["seen"] - c["at"] > 2), key=lambda c: c["at"])
    for c in late:
        print(f"  late: {c['job']} {c['state']} at {time.strftime('%H:%M:%S', time.localtime(c['at']))}: the list "
              f"asked {(c['before'] or 0) - c['at']:+.2f} s did not show it, the one asked "
              f"{(c['shown'] or 0) - c['at']:+.2f} s did, answered {(c['answered'] or 0) - c['at']:+.2f} s; "
              f"drawn {c['seen'] - c['at']:+.2f} s")
    rows.append(("  naive: full page reload every 1 s", f"{statistics.median(n_lat):.2f} s", "",
                 f"{statistics.median(n_lat) / statistics.median(both):5.1f}x the studio's median; "
                 f"{lat(n_lat, n_missed, n_total)}"))
    rows.append(("  naive: per-task polling every 1 s (Python)", f"{statistics.median(p_lat):.2f} s", "",
                 f"{lat(p_lat, p_missed, p_total)} (seen by the poller, not drawn)"))
    g_rate = graph["requests"] / graph["window"]
    rows.append(("API requests/s, graph polling (proxy count)", f"{g_rate:.2f}/s", "goal <= 1/s",
                 f"{graph['requests']} in {graph['window']:.0f} s live: {graph['kinds']}"))
    f = followed["follow"]
    rows.append((f"API requests/s, {FOLLOWED}'s log followed", f"{f['requests'] / f['window']:.2f}/s", "goal <= 1/s",
                 f"{f['requests']} ({f['logs']} log reads) in its {f['window']:.0f} s running; whole run "
                 f"{followed['requests'] / followed['window']:.2f}/s"))
    nr = naive["requests"]
    rows.append(("  naive: page reload every 1 s", f"{len(nr) / max(1e-9, nr[-1][0] - nr[0][0]):.2f}/s", "",
                 f"{len(nr)} requests in {nr[-1][0] - nr[0][0]:.0f} s ({len(naive['loads'])} reloads; the "
                 "studio's server serves a read younger than 1 s again)"))
    p_rate = len(per_task["requests"]) / per_task["window"]
    rows.append(("  naive: one GET per task per 1 s", f"{p_rate:.2f}/s", "",
                 f"{p_rate / g_rate:5.1f}x the studio's graph polling, for 12 jobs; "
                 f"{len(per_task['requests'])} in {per_task['window']:.0f} s"))
    return rows


def fmt(ms: float) -> str:
    return f"{ms:7.1f} ms" if ms < 10_000 else f"{ms / 1000:7.2f} s "


def show(rows: list[tuple]) -> None:
    for name, value, goal, note in rows:
        print(f"  {name:<50} {value:>10}  {'(' + goal + ')' if goal else '':<16} {note}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-stack", action="store_true", help="skip the figures against the real local stack")
    args = ap.parse_args()
    if not browser.available():
        print("bench-studio: no headless browser (apt-get install chromium chromium-driver)", file=sys.stderr)
        return 6

    print(f"bench-studio {time.strftime('%Y-%m-%d %H:%M')}: {args.runs} runs each, medians; {args.jobs}-job "
          f"pipeline in 10 lanes; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-studio-") as tmp, StandinAirflow(page_limit=100) as standin:
        project = copy_project(Path(tmp) / "project")
        big = "pipelines/bench_studio.yaml"
        (project / big).write_text(big_pipeline(args.jobs))
        standin.runs["bench_studio"] = [("manual__bench", "running", standin_tis(args.jobs))]

        httpd, url = make_server(project)
        studio = httpd.loader.get()
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
            plain = studio.runner  # no stack for this project: no states
            states_t, plain_t = [], []
            for _ in range(args.runs):  # with and without states, alternately; example_etl open before each
                studio.runner = Runner(studio.root, airflow_url=standin.url)
                states_t.append(draw_with_states_once(driver, studio.runner, big, args.jobs))
                studio.runner = plain
                draw_once(driver, etl, 4, big)
                plain_t.append(draw_once(driver, big, args.jobs, etl))
                draw_once(driver, etl, 4, big)
            standin_asked = dict(standin.requests)
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
    draw_states, draw_plain = statistics.median(states_t) * 1000, statistics.median(plain_t) * 1000
    v_small, v_big = (statistics.median(val[f]) * 1000 for f in (etl, big))
    render_ms = statistics.median(render_t) * 1000
    open_ms = {k: statistics.median(o[k] for o in opens) * 1000 for k in ("url", "list", "graph")}
    show([
        (f"draw {args.jobs} jobs (click to drawn, fitted)", fmt(draw_big), "goal < 1 s",
         f"{draw_big / draw_small:5.1f}x example_etl's 4 jobs ({fmt(draw_small).strip()}); elkjs layout alone "
         f"{layout_ms:.0f} ms"),
        (f"draw {args.jobs} jobs with a run's states (stand-in API)", fmt(draw_states), "goal < 1 s",
         f"{draw_states / draw_plain:5.2f}x the same draw without states ({fmt(draw_plain).strip()}, "
         f"alternated); the stand-in answered {standin_asked}"),
        ("validate one edit, example_etl (API)", fmt(v_small), "goal < 100 ms",
         f"{render_ms / v_small:5.1f}x faster than build.py render subprocess ({fmt(render_ms).strip()})"),
        (f"validate one edit, {args.jobs} jobs (API)", fmt(v_big), "goal < 100 ms",
         f"{render_ms / v_big:5.1f}x faster than build.py render subprocess"),
        ("open: build.py studio to example_etl drawn", fmt(open_ms["graph"]), "goal < 2 s",
         f"{open_ms['graph'] / render_ms:5.1f}x one build.py render subprocess; URL printed at "
         f"{open_ms['url']:.0f} ms, pipeline list at {open_ms['list']:.0f} ms"),
    ])
    if args.no_stack:
        print("  live figures (state latency, API requests): not measured (--no-stack)")
        return 0
    print(f"against the real local stack (load {os.getloadavg()[0]:.1f}):", flush=True)
    rows = live_section(args)
    if rows:
        show(rows)
    print(f"bench-studio done {time.strftime('%H:%M')}, load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
