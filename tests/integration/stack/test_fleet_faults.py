"""Faults on the production-shaped stack (#34): CeleryExecutor with 2 workers, 2 schedulers and the S3 store
(SeaweedFS in the stack's network), one stack for the whole module (`make up STORE=s3`).

From a copy of the project with one probe pipeline added: each of its jobs prints the bundle version its
try was given (ML_PLATFORM_BUNDLE_VERSION, set by the job operator) and the MARK its DAG code passes in, then
sleeps. A watcher counts, every second, the live job containers of a task instance (by the labels the
docker backend puts on them). The checks:
  - `make run PIPELINE=example_etl` is green on this shape (S3 store, Celery workers);
  - a worker killed (`docker kill`) mid-task: the task is retried on the other worker, the run succeeds,
    never two live job containers of that task instance (the retry stops the lost try's job first);
  - one scheduler killed mid-run: the run finishes;
  - a deploy of v2 while a v1 run is in flight: every task of that run runs v1's code and bundle version,
    the next run v2's;
  - a worker replaced by one with an empty disk fetches the version its tasks need, and nothing else;
  - the store stopped after the DAG processor took a version, before the workers fetched it: the DAG
    processor keeps serving it, the try fails naming the version and the store, the retry succeeds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from platformctl.config import collect_overrides, load_config
from platformctl.services.stack import deploy_local
from platformctl.stack.api import AirflowAPI
from platformctl.stack.compose import Stack
from platformctl.stack.follow import follow_run, wait_for_bundle
from tests.conftest import ROOT
from tests.integration.helpers import working_tree_copy

PROJECT = f"mlp-fleet-{uuid.uuid4().hex[:6]}"
DAG = "fleet_probe"
HEARTBEAT_TIMEOUT = "30"  # seconds without a task heartbeat before a lost worker's try is failed
PROBE = ("import os, socket, sys, time; "
         "print('FLEET_PROBE', os.environ.get('ML_PLATFORM_BUNDLE_VERSION'), os.environ['MARK'], flush=True); "
         "time.sleep(int(os.environ['SLEEP']))")
BUNDLES = "/tmp/airflow/dag_bundles/ml-platform/versions"  # each Airflow container's own bundle storage


def probe_pipeline(mark: str, sleep: int, retries: int = 2, retry_delay: int = 5) -> dict:
    job = {"command": ["python3", "-c", PROBE]}
    return {"version": 2, "dag": {"name": DAG, "schedule": None, "tags": ["test"]},
            "defaults": {"docker_image": "ml-platform/etl-job:0.1.0", "resource_flavor": "cpu-small",
                         "retries": retries, "retry_delay": f"{retry_delay}s", "env": {"MARK": mark, "SLEEP": "5"}},
            "jobs": {"first": job,
                     "long": {**job, "env": {"MARK": mark, "SLEEP": str(sleep)}, "depends_on": ["first"]},
                     "side": {**job, "depends_on": ["first"]},
                     "last": {**job, "depends_on": ["long", "side"]}}}


class Fleet:
    def __init__(self, root: Path, docker: str):
        self.root, self.docker = root, docker
        self.stack = Stack(root, PROJECT, "stack/compose.yaml")
        self.api: AirflowAPI | None = None  # once the stack is up

    def cli(self, *args: str, timeout: int = 1500) -> subprocess.CompletedProcess:
        p = subprocess.run([sys.executable, "build.py", *args, "--project", PROJECT], cwd=self.root,
                           capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, "TI_HEARTBEAT_TIMEOUT": HEARTBEAT_TIMEOUT})
        print(p.stdout[-3000:], p.stderr[-3000:])
        return p

    def dk(self, *args: str, check: bool = True) -> str:
        p = subprocess.run([self.docker, *args], capture_output=True, text=True)
        assert not check or p.returncode == 0, p.stderr
        return p.stdout.strip()

    def container(self, service: str, n: int) -> str:
        return f"{PROJECT}-{service}-{n}"

    def worker_of(self, hostname: str) -> str:
        """The worker container a task instance's hostname names (Airflow records the container's hostname)."""
        (name,) = [n for h, n in self.workers().items() if hostname == h or hostname.startswith(h + ".")]
        return name

    def workers(self) -> dict[str, str]:
        """hostname (what Airflow records on a task instance) -> container name, of every worker container."""
        names = self.dk("ps", "-a", "--filter", f"label=com.docker.compose.project={PROJECT}",
                        "--filter", "label=com.docker.compose.service=worker", "--format", "{{.Names}}").split()
        return {self.dk("inspect", "-f", "{{.Config.Hostname}}", n): n for n in names}

    def deploy(self, mark: str, sleep: int, **kw) -> str:
        """make run's deploy step (the store the stack reads: its SeaweedFS) with the probe at `mark`."""
        (self.root / "pipelines" / f"{DAG}.yaml").write_text(yaml.safe_dump(probe_pipeline(mark, sleep, **kw)))
        version = deploy_local(self.root, load_config(self.root, collect_overrides()), state=self.stack.state()).version
        return version

    def trigger(self) -> str:
        d = self.api.wait_for_dag(DAG, timeout=300)
        if d.get("is_paused"):
            self.api.unpause(DAG)
        return self.api.trigger(DAG)["dag_run_id"]

    def ti(self, run_id: str, task: str) -> dict:
        return next(t for t in self.api.task_instances(DAG, run_id) if t["task_id"] == task)

    def wait_running(self, run_id: str, task: str, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ti = self.ti(run_id, task)
            if ti.get("state") == "running" and ti.get("hostname") and self.live_jobs(run_id, task):
                return ti
            assert ti.get("state") not in ("failed", "upstream_failed"), ti
            time.sleep(1)
        raise AssertionError(f"{task} of {run_id} never ran: {self.ti(run_id, task)}")

    def live_jobs(self, run_id: str, task: str) -> list[str]:
        return self.dk("ps", "-q", "--filter", f"label=ml-platform/dag-id={DAG}",
                       "--filter", f"label=ml-platform/run-id={run_id}",
                       "--filter", f"label=ml-platform/task-id={task}").split()

    def printed(self, run_id: str) -> dict[str, tuple[str, str]]:
        """task -> (bundle version, mark) its job printed, from Airflow's log of its last try."""
        out = {}
        for t in self.api.task_instances(DAG, run_id):
            log = self.api.task_log(DAG, run_id, t["task_id"], max(int(t["try_number"] or 1), 1))
            m = re.findall(r"FLEET_PROBE (\S+) (\S+)", log)
            assert m, f"{t['task_id']} printed no FLEET_PROBE line:\n{log[-2000:]}"
            out[t["task_id"]] = m[-1]
        return out

    def versions_on(self, container: str) -> set[str]:
        out = self.dk("exec", container, "sh", "-c", f"ls {BUNDLES} 2>/dev/null || true")
        return {v for v in out.split() if not v.startswith(".")}


class Watcher(threading.Thread):
    """Counts the live job containers of one task instance every second; `most` is the largest count seen."""

    def __init__(self, fleet: Fleet, run_id: str, task: str):
        super().__init__(daemon=True)
        self.fleet, self.run_id, self.task = fleet, run_id, task
        self.most, self.seen, self.stop = 0, set(), threading.Event()

    def run(self):
        while not self.stop.is_set():
            ids = self.fleet.live_jobs(self.run_id, self.task)
            self.most = max(self.most, len(ids))
            self.seen.update(ids)
            time.sleep(1)


@pytest.fixture(scope="module")
def fleet(docker: str, image: str, tmp_path_factory):
    root = working_tree_copy(tmp_path_factory.mktemp("fleet") / "repo")
    (root / "build").mkdir(exist_ok=True)
    shutil.copy(ROOT / "build" / "build-record.json", root / "build" / "build-record.json")
    (root / "pipelines" / f"{DAG}.yaml").write_text(yaml.safe_dump(probe_pipeline("v1", 75)))
    f = Fleet(root, docker)
    t0 = time.monotonic()
    p = f.cli("up", "--image", image, "--executor", "CeleryExecutor", "--workers", "2", "--store", "s3",
              "--wait-timeout", "1200")
    try:
        assert p.returncode == 0, f"make up STORE=s3 failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
        print(f"make up (Celery, 2 workers, 2 schedulers, SeaweedFS): {time.monotonic() - t0:.0f}s")
        f.api = AirflowAPI(f.stack.url)
        yield f
    finally:
        d = f.cli("down", "--volumes")
        assert d.returncode == 0, d.stderr


def test_the_stack_has_the_managed_shape_and_reads_the_bundle_over_s3(fleet: Fleet):
    state = fleet.stack.state()
    assert (state["EXECUTOR"], state["WORKERS"], state["SCHEDULERS"], state["STORE"]) == ("CeleryExecutor", "2", "2", "s3")
    services = fleet.dk("ps", "--filter", f"label=com.docker.compose.project={PROJECT}",
                        "--format", "{{.Label \"com.docker.compose.service\"}}").split()
    assert sorted(services) == sorted(["postgres", "redis", "seaweedfs", "api-server", "scheduler", "scheduler",
                                       "dag-processor", "triggerer", "worker", "worker"])
    # no volume shared between workers and the DAG processor: each has its own bundle storage
    mounts = {n: json.loads(fleet.dk("inspect", "-f", "{{json .Mounts}}", n))
              for n in (fleet.container("worker", 1), fleet.container("worker", 2), fleet.container("dag-processor", 1))}
    for name, ms in mounts.items():
        assert not any(m["Destination"].startswith("/tmp") for m in ms), (name, ms)
        assert {m["Destination"] for m in ms} <= {"/opt/airflow/platform/flavors.yaml", "/opt/airflow/logs",
                                                  "/var/run/docker.sock"}, (name, ms)
    # the bundle config and connection as the Helm values write them: the S3 store by endpoint_url
    env = fleet.dk("exec", fleet.container("dag-processor", 1), "sh", "-c",
                   "echo $AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST; echo $AIRFLOW_CONN_AWS_DEFAULT; "
                   "echo $AIRFLOW__CORE__EXECUTOR").splitlines()
    kwargs = json.loads(env[0])[0]["kwargs"]
    assert kwargs["store"] == "s3" and kwargs["endpoint_url"] == "http://seaweedfs:8333"
    assert json.loads(env[1])["extra"]["endpoint_url"] == "http://seaweedfs:8333"
    assert env[2] == "CeleryExecutor"


def test_example_etl_runs_green_on_celery_with_the_s3_store(fleet: Fleet):
    t0 = time.monotonic()
    p = fleet.cli("run", "--pipeline", "example_etl", "--timeout", "900")
    assert p.returncode == 0, f"make run failed (exit {p.returncode}):\n{p.stdout[-4000:]}\n{p.stderr[-2000:]}"
    assert ": success in" in p.stdout
    print(f"example_etl on the Celery + S3 stack: {time.monotonic() - t0:.0f}s")


def test_a_killed_worker_s_task_is_retried_elsewhere_with_one_live_job(fleet: Fleet):
    t0 = time.monotonic()
    run_id = fleet.trigger()
    watcher = Watcher(fleet, run_id, "long")
    watcher.start()
    ti = fleet.wait_running(run_id, "long")
    killed = fleet.worker_of(ti["hostname"])
    fleet.dk("kill", killed)
    try:
        result = follow_run(fleet.api, DAG, run_id, timeout=900, echo=print)
    finally:
        watcher.stop.set()
        watcher.join()
        fleet.dk("start", killed)
    assert result.state == "success", result
    long = fleet.ti(run_id, "long")
    assert int(long["try_number"]) >= 2, long  # the lost try failed, the retry ran
    assert long["hostname"] != ti["hostname"] and fleet.worker_of(long["hostname"]) != killed
    assert watcher.most == 1, f"{watcher.most} live job containers of one task instance at once"
    assert len(watcher.seen) >= 2  # the lost try's job (stopped by the retry) and the retry's own
    retry_log = fleet.api.task_log(DAG, run_id, "long", int(long["try_number"]))
    assert re.search(r"stopping job container \w+ of try 1 of this task instance", retry_log), retry_log[-3000:]
    print(f"worker killed mid-task -> retried on the other worker: {time.monotonic() - t0:.0f}s")


def test_a_killed_scheduler_does_not_stop_the_run(fleet: Fleet):
    t0 = time.monotonic()
    run_id = fleet.trigger()
    fleet.wait_running(run_id, "first")
    fleet.dk("kill", fleet.container("scheduler", 1))
    try:
        result = follow_run(fleet.api, DAG, run_id, timeout=900, echo=print)
    finally:
        fleet.dk("start", fleet.container("scheduler", 1))
    assert result.state == "success", result
    print(f"scheduler killed mid-run -> the run finished: {time.monotonic() - t0:.0f}s")


def test_a_deploy_mid_run_keeps_the_run_on_its_version_and_the_next_run_takes_the_new(fleet: Fleet):
    t0 = time.monotonic()
    v1 = fleet.deploy("v1", 30)
    wait_for_bundle(fleet.api, DAG, v1, timeout=300, echo=print)
    run1 = fleet.trigger()
    fleet.wait_running(run1, "long")
    v2 = fleet.deploy("v2", 30)
    assert v2 != v1
    wait_for_bundle(fleet.api, DAG, v2, timeout=300, echo=print)  # v2 is live while run 1 is in flight
    assert follow_run(fleet.api, DAG, run1, timeout=900, echo=print).state == "success"
    assert fleet.printed(run1) == {t: (v1, "v1") for t in ("first", "long", "side", "last")}
    run2 = fleet.trigger()
    assert follow_run(fleet.api, DAG, run2, timeout=900, echo=print).state == "success"
    assert fleet.printed(run2) == {t: (v2, "v2") for t in ("first", "long", "side", "last")}
    print(f"deploy mid-run (two runs): {time.monotonic() - t0:.0f}s")


def test_a_worker_with_an_empty_disk_fetches_what_its_tasks_need_and_nothing_else(fleet: Fleet):
    t0 = time.monotonic()
    live = fleet.deploy("v3", 1)
    wait_for_bundle(fleet.api, DAG, live, timeout=300, echo=print)
    w1, w2 = fleet.container("worker", 1), fleet.container("worker", 2)
    fleet.dk("rm", "-f", w2)  # its disk goes with it
    p = fleet.stack.compose("up", "-d", "--no-deps", "--no-recreate", "worker", capture=True)  # a new one, empty
    (w2,) = set(fleet.workers().values()) - {w1}
    assert fleet.versions_on(w2) == set()
    fleet.dk("stop", w1)  # every task of the next run lands on the new worker
    try:
        run_id = fleet.trigger()
        assert follow_run(fleet.api, DAG, run_id, timeout=900, echo=print).state == "success"
    finally:
        fleet.dk("start", w1)
    assert {t["hostname"] for t in fleet.api.task_instances(DAG, run_id)} == {fleet.dk("inspect", "-f",
                                                                                      "{{.Config.Hostname}}", w2)}
    # the run's version only: not the versions deployed before it (v1, v2, ...) that the store still holds
    assert fleet.versions_on(w2) == {live}, p.stdout
    print(f"empty-disk worker: {time.monotonic() - t0:.0f}s")


def test_the_store_stopped_during_a_worker_s_fetch_fails_the_try_naming_it_and_the_retry_succeeds(fleet: Fleet):
    """SeaweedFS stopped after the DAG processor took a new version, before any worker fetched it: the DAG
    processor keeps serving that version, each try that needs it fails naming the version and the store,
    nothing partial is left in a worker's storage, and the retry once the store is back succeeds."""
    t0 = time.monotonic()
    live = fleet.deploy("v4", 1, retries=3, retry_delay=30)  # the retry comes after the store is back
    wait_for_bundle(fleet.api, DAG, live, timeout=300, echo=print)
    store = fleet.container("seaweedfs", 1)
    fleet.dk("stop", store)
    try:
        run_id = fleet.trigger()
        deadline = time.monotonic() + 600
        while fleet.ti(run_id, "first").get("state") not in ("up_for_retry", "failed"):
            assert time.monotonic() < deadline, fleet.ti(run_id, "first")
            time.sleep(2)
        assert fleet.api.dag(DAG)["bundle_version"] == live  # the DAG processor still serves it
        first_try = fleet.api.task_log(DAG, run_id, "first", 1)
        assert live in first_try and "seaweedfs" in first_try, first_try[-3000:]
        for w in fleet.workers().values():  # no partial version directory left behind
            if fleet.dk("inspect", "-f", "{{.State.Running}}", w) == "true":
                assert live not in fleet.versions_on(w), w
    finally:
        fleet.dk("start", store)
    assert follow_run(fleet.api, DAG, run_id, timeout=900, echo=print).state == "success"
    assert int(fleet.ti(run_id, "first")["try_number"]) >= 2
    print(f"store stopped during a worker's fetch: {time.monotonic() - t0:.0f}s")
