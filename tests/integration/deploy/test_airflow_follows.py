"""Airflow follows every deploy: the local stack from the built image, the platform's bundle class over the
`local` environment's store, the README's commands (up, deploy, rollback), no container restarted.

One module, one stack, in order: v1 is parsed with bundle version v1; a run starts on v1; v2 (which changes
the demo's commands) is deployed while the run's first job sleeps; Airflow switches to v2 without a restart;
the run's second job, started after v2 went live, prints v1's value; a run on v2 prints v2's. Rollback is
live in Airflow within the refresh interval; a tampered version is refused, the last good one serves.
The Helm values file stays byte-identical through it all. Latencies are printed (docs/delivery.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from platformctl.deploy.bundle import collect
from platformctl.deploy.deliver import deploy, read_pointer
from platformctl.deploy.store import LocalStore
from platformctl.stack.api import AirflowAPI
from platformctl.stack.compose import Stack, compose_binary, compose_env
from tests.bundle_tamper import tamper
from tests.conftest import ROOT

PROJECT = f"mlp-follow-{uuid.uuid4().hex[:6]}"
DAG = "follow_demo"
REFRESH = 10  # the local environment's bundle refresh_interval
PIPELINE = """version: 1
dag:
  name: follow_demo
  schedule: null
defaults:
  docker_image: ml-platform/etl-job:0.1.0
  resource_flavor: cpu-small
jobs:
  first:
    command: [python3, -c, "import time; time.sleep({sleep}); print('first done')"]
  second:
    command: [python3, -c, "print('DEMO_VALUE={value}')"]
    depends_on: [first]
"""


def cli(repo: Path, *args: str, timeout: int = 900, project: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "PLATFORM_ROOT": str(repo)}
    p = subprocess.run([sys.executable, str(ROOT / "build.py"), *args, *(["--project", PROJECT] if project else [])],
                       cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)
    print(f"$ build.py {' '.join(args)}\n{p.stdout[-3000:]}{p.stderr[-3000:]}")
    return p


def write_pipeline(repo: Path, *, sleep: int, value: str) -> None:
    (repo / "pipelines" / f"{DAG}.yaml").write_text(PIPELINE.format(sleep=sleep, value=value))


@pytest.fixture(scope="module")
def repo(image) -> Path:
    # not under pytest's 0700 tmp dir: the containers' user (uid 50000) reads the store folder
    d = Path(tempfile.mkdtemp(prefix="mlp-follow-", dir="/tmp"))
    d.chmod(0o755)
    for item in ("pipelines", "templates", "stack", "examples", "flavors.yaml", "platform.yaml", "requirements",
                 "build", "schemas"):
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, d / item, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy(src, d / item)
    for p in (d / "pipelines").glob("*.yaml"):  # only the demo: the stack parses one DAG
        p.unlink()
    (d / "dags").mkdir()
    write_pipeline(d, sleep=150, value="v1")  # long enough for v2 to go live meanwhile on a busy machine
    subprocess.run(["git", "init", "-q"], cwd=d, check=True)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def stack(repo, image, docker):
    # the small stack: this checks the DAG processor following the pointer; the Celery shape (workers
    # fetching pinned versions themselves) is tests/integration/stack/test_fleet_faults.py's
    p = cli(repo, "up", "--image", image, "--executor", "LocalExecutor", project=True)
    try:
        assert p.returncode == 0, f"make up failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
        assert "deploying the bundle to the local environment" in p.stdout
        api = AirflowAPI(Stack(repo, PROJECT, "stack/compose.yaml").url, timeout=90)
        yield api
    finally:
        for service in ("dag-processor", "scheduler"):  # kept for a failure's post-mortem
            logs = Stack(repo, PROJECT, "stack/compose.yaml").compose("logs", "--no-color", service,
                                                                      capture=True, check=False)
            (repo.parent / f"{PROJECT}-{service}.log").write_text(logs.stdout or "")
        d = cli(repo, "down", "--volumes", project=True)
        assert d.returncode == 0, d.stderr


def live_version(repo: Path) -> str:
    return read_pointer(LocalStore(repo / ".platform/bundles/local"), "")["version"]


def wait_bundle(api: AirflowAPI, version: str, timeout: float = 180) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        d = api.dag(DAG)
        if d and d.get("bundle_version") == version:
            return time.monotonic() - t0
        time.sleep(0.25)
    raise AssertionError(f"Airflow did not switch {DAG} to bundle {version} within {timeout}s "
                         f"(has {(api.dag(DAG) or {}).get('bundle_version')})")


def started_at(repo: Path) -> dict[str, str]:
    from tests.conftest import docker_cli

    ids = subprocess.run([*compose_binary(), "-p", PROJECT, "ps", "-q"], cwd=repo, env=compose_env(),
                         capture_output=True, text=True, check=True).stdout.split()
    out = subprocess.run([docker_cli() or "docker", "inspect", "--format", "{{.Name}} {{.State.StartedAt}}", *ids],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def task_state(api, run_id, task):
    return {t["task_id"]: t for t in api.task_instances(DAG, run_id)}.get(task, {}).get("state")


def wait_run(api, run_id, timeout=400) -> dict:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        r = api.run(DAG, run_id)
        if r["state"] in ("success", "failed"):
            return r
        time.sleep(2)
    raise AssertionError(f"run {run_id} did not finish")


def second_log(api, run_id) -> str:
    ti = {t["task_id"]: t for t in api.task_instances(DAG, run_id)}["second"]
    return api.task_log(DAG, run_id, "second", ti["try_number"])


FIGURES: dict[str, float] = {}


def test_a_run_started_on_v1_runs_v1_code_after_v2_went_live(stack: AirflowAPI, repo: Path):
    v1 = live_version(repo)
    values = (repo / "deploy/local/values.yaml").read_bytes()
    wait_bundle(stack, v1)
    before = started_at(repo)
    stack.unpause(DAG)
    run1 = stack.trigger(DAG, note="started on v1")["dag_run_id"]
    t0 = time.monotonic()
    while (state := task_state(stack, run1, "first")) != "running":
        assert state not in ("failed", "upstream_failed", "success"), f"the first job ended as {state}"
        assert time.monotonic() - t0 < 300, f"the first job did not start (state {state})"
        time.sleep(1)
    assert stack.run(DAG, run1)["bundle_version"] == v1

    write_pipeline(repo, sleep=1, value="v2")  # v2 changes the demo's commands
    p = cli(repo, "deploy", "--env", "local")
    assert p.returncode == 0, p.stderr
    v2 = live_version(repo)
    assert v2 != v1
    FIGURES["deploy -> Airflow parses v2 (refresh interval 10 s, no nudge)"] = wait_bundle(stack, v2)
    assert task_state(stack, run1, "first") == "running", "v2 went live too late to prove anything: sleep longer"

    r1 = wait_run(stack, run1)
    assert r1["state"] == "success" and r1["bundle_version"] == v1
    log1 = second_log(stack, run1)
    assert "DEMO_VALUE=v1" in log1 and "DEMO_VALUE=v2" not in log1, log1[-2000:]

    run2 = stack.trigger(DAG, note="started on v2")["dag_run_id"]
    r2 = wait_run(stack, run2)
    assert r2["state"] == "success" and r2["bundle_version"] == v2
    assert "DEMO_VALUE=v2" in second_log(stack, run2)

    assert started_at(repo) == before, "a container was restarted"
    assert (repo / "deploy/local/values.yaml").read_bytes() == values


def test_rollback_is_live_in_airflow_within_the_refresh_interval(stack: AirflowAPI, repo: Path):
    values = (repo / "deploy/local/values.yaml").read_bytes()
    before = started_at(repo)
    v2 = live_version(repo)
    t0 = time.monotonic()
    p = cli(repo, "rollback", "--env", "local")
    assert p.returncode == 0, p.stderr
    FIGURES["rollback command (pointer switch, CLI start included)"] = time.monotonic() - t0
    v1 = live_version(repo)
    took = wait_bundle(stack, v1)
    FIGURES["rollback -> Airflow parses v1 (no nudge)"] = took
    # one refresh interval, plus Airflow's own loop: bundle check every 5 s and the file's next parse
    # (min_file_process_interval 10 s in the stack), with room for a busy 2-core machine
    assert took < REFRESH + 5 + 10 + 20, f"rollback took {took:.1f}s to reach Airflow"

    t0 = time.monotonic()
    p = cli(repo, "rollback", "--env", "local", "--to", v2, "--airflow-url", stack.base_url)
    assert p.returncode == 0 and "asked Airflow" in p.stdout, p.stdout + p.stderr
    wait_bundle(stack, v2)
    FIGURES["rollback with immediate refresh -> Airflow parses v2 (command included)"] = time.monotonic() - t0
    assert started_at(repo) == before
    assert (repo / "deploy/local/values.yaml").read_bytes() == values


class TamperBeforeSwitch(LocalStore):
    """Deploys normally, then changes one stored file of the new version just before the pointer switch."""

    def put_if(self, key, data, etag):
        if key.endswith("current.json"):
            version = json.loads(data)["version"]
            target = self.root / "bundles" / version / f"dags/{DAG}.py"
            tamper(lambda k: (self.root / k).read_bytes(), lambda k, d: (self.root / k).write_bytes(d),
                   f"bundles/{version}", f"dags/{DAG}.py", target.read_bytes() + b"\nprint('tampered')\n")
        super().put_if(key, data, etag)


def test_a_tampered_version_is_refused_and_the_last_good_one_serves(stack: AirflowAPI, repo: Path):
    good = live_version(repo)
    write_pipeline(repo, sleep=1, value="v3")
    assert cli(repo, "render").returncode == 0
    bad = deploy(TamperBeforeSwitch(repo / ".platform/bundles/local"), "",
                 collect(repo, image_digest=json.loads((repo / "build/build-record.json").read_text())["image_id"])
                 ).version
    assert live_version(repo) == bad
    stack_ = Stack(repo, PROJECT, "stack/compose.yaml")
    pattern = re.compile(rf"bundle 'ml-platform': keeping {good} live: {bad}: file dags/{DAG}.py has sha256")
    t0 = time.monotonic()
    while True:
        logs = stack_.compose("logs", "--no-color", "dag-processor", capture=True, check=False).stdout
        if pattern.search(logs):
            break
        assert time.monotonic() - t0 < 120, "the DAG processor did not refuse the tampered version:\n" + logs[-3000:]
        time.sleep(2)
    time.sleep(REFRESH + 5)  # another refresh cycle: still the good version
    assert stack.dag(DAG)["bundle_version"] == good
    assert stack.import_errors() == []
    # roll back to the good version: Airflow is already there
    assert cli(repo, "rollback", "--env", "local", "--to", good).returncode == 0


def test_the_dag_processor_pre_imports_the_job_backend_before_it_forks(stack: AirflowAPI, repo: Path):
    # the image's bundle class in the real DAG processor: the manager loads the backend once for its children
    logs = Stack(repo, PROJECT, "stack/compose.yaml").compose("logs", "--no-color", "dag-processor",
                                                             capture=True, check=False).stdout
    assert re.search(r"bundle '[\w-]+': pre-imported DockerJobOperator, the flavor catalog /opt/airflow/platform/"
                     r"flavors.yaml and the asset URI handlers", logs), logs[-3000:]
    assert "not pre-importing" not in logs


def test_zz_print_figures():
    print("\nFIGURES " + json.dumps({k: round(v, 2) for k, v in FIGURES.items()}, indent=1))
