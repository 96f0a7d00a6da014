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
import re
import subprocess
import time

import pytest

from platformctl.deploy.bundle import collect
from platformctl.deploy.deliver import deploy
from platformctl.deploy.store import LocalStore
from platformctl.stack.api import AirflowAPI
from platformctl.stack.compose import compose_binary, compose_env
from tests.bundle_tamper import tamper
from tests.integration.deploy.demo_stack import DemoProject, wait_bundle as wait_for

DAG = "follow_demo"
REFRESH = 10  # the local environment's bundle refresh_interval


def write_pipeline(demo: DemoProject, *, sleep: int, value: str) -> None:
    demo.write_pipeline({
        "first": {"command": ["python3", "-c", f"import time; time.sleep({sleep}); print('first done')"]},
        "second": {"command": ["python3", "-c", f"print('DEMO_VALUE={value}')"], "depends_on": ["first"]}})


@pytest.fixture(scope="module")
def demo(image) -> DemoProject:
    d = DemoProject("follow", DAG)
    write_pipeline(d, sleep=150, value="v1")  # long enough for v2 to go live meanwhile on a busy machine
    yield d
    d.remove()


@pytest.fixture(scope="module")
def stack(demo, image, docker):
    # the small stack: this checks the DAG processor following the pointer; the Celery shape (workers
    # fetching pinned versions themselves) is tests/integration/stack/test_fleet_faults.py's
    with demo.up("--image", image, "--executor", "LocalExecutor", expect="deploying the bundle to the local "
                 "environment", keep_logs=("dag-processor", "scheduler")) as api:
        yield api


def wait_bundle(api: AirflowAPI, version: str, timeout: float = 180) -> float:
    return wait_for(api, DAG, version, timeout, poll=0.25)


def started_at(demo: DemoProject) -> dict[str, str]:
    from tests.conftest import docker_cli

    ids = subprocess.run([*compose_binary(), "-p", demo.project, "ps", "-q"], cwd=demo.path, env=compose_env(),
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


def test_a_run_started_on_v1_runs_v1_code_after_v2_went_live(stack: AirflowAPI, demo: DemoProject):
    v1 = demo.live_version()
    values = (demo.path / "deploy/local/values.yaml").read_bytes()
    wait_bundle(stack, v1)
    before = started_at(demo)
    stack.unpause(DAG)
    run1 = stack.trigger(DAG, note="started on v1")["dag_run_id"]
    t0 = time.monotonic()
    while (state := task_state(stack, run1, "first")) != "running":
        assert state not in ("failed", "upstream_failed", "success"), f"the first job ended as {state}"
        assert time.monotonic() - t0 < 300, f"the first job did not start (state {state})"
        time.sleep(1)
    assert stack.run(DAG, run1)["bundle_version"] == v1

    write_pipeline(demo, sleep=1, value="v2")  # v2 changes the demo's commands
    p = demo.cli("deploy", "--env", "local")
    assert p.returncode == 0, p.stderr
    v2 = demo.live_version()
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

    assert started_at(demo) == before, "a container was restarted"
    assert (demo.path / "deploy/local/values.yaml").read_bytes() == values


def test_rollback_is_live_in_airflow_within_the_refresh_interval(stack: AirflowAPI, demo: DemoProject):
    values = (demo.path / "deploy/local/values.yaml").read_bytes()
    before = started_at(demo)
    v2 = demo.live_version()
    t0 = time.monotonic()
    p = demo.cli("rollback", "--env", "local")
    assert p.returncode == 0, p.stderr
    FIGURES["rollback command (pointer switch, CLI start included)"] = time.monotonic() - t0
    v1 = demo.live_version()
    took = wait_bundle(stack, v1)
    FIGURES["rollback -> Airflow parses v1 (no nudge)"] = took
    # one refresh interval, plus Airflow's own loop: bundle check every 5 s and the file's next parse
    # (min_file_process_interval 10 s in the stack), with room for a busy 2-core machine
    assert took < REFRESH + 5 + 10 + 20, f"rollback took {took:.1f}s to reach Airflow"

    t0 = time.monotonic()
    p = demo.cli("rollback", "--env", "local", "--to", v2, "--airflow-url", stack.base_url)
    assert p.returncode == 0 and "asked Airflow" in p.stdout, p.stdout + p.stderr
    wait_bundle(stack, v2)
    FIGURES["rollback with immediate refresh -> Airflow parses v2 (command included)"] = time.monotonic() - t0
    assert started_at(demo) == before
    assert (demo.path / "deploy/local/values.yaml").read_bytes() == values


class TamperBeforeSwitch(LocalStore):
    """Deploys normally, then changes one stored file of the new version just before the pointer switch."""

    def put_if(self, key, data, etag):
        if key.endswith("current.json"):
            version = json.loads(data)["version"]
            target = self.root / "bundles" / version / f"dags/{DAG}.py"
            tamper(lambda k: (self.root / k).read_bytes(), lambda k, d: (self.root / k).write_bytes(d),
                   f"bundles/{version}", f"dags/{DAG}.py", target.read_bytes() + b"\nprint('tampered')\n")
        super().put_if(key, data, etag)


def test_a_tampered_version_is_refused_and_the_last_good_one_serves(stack: AirflowAPI, demo: DemoProject):
    good = demo.live_version()
    write_pipeline(demo, sleep=1, value="v3")
    assert demo.cli("render").returncode == 0
    image_id = json.loads((demo.path / "build/build-record.json").read_text())["image_id"]
    bad = deploy(TamperBeforeSwitch(demo.store().root), "", collect(demo.path, image_digest=image_id)).version
    assert demo.live_version() == bad
    pattern = re.compile(rf"bundle 'ml-platform': keeping {good} live: {bad}: file dags/{DAG}.py has sha256")
    t0 = time.monotonic()
    while True:
        logs = demo.logs("dag-processor")
        if pattern.search(logs):
            break
        assert time.monotonic() - t0 < 120, "the DAG processor did not refuse the tampered version:\n" + logs[-3000:]
        time.sleep(2)
    time.sleep(REFRESH + 5)  # another refresh cycle: still the good version
    assert stack.dag(DAG)["bundle_version"] == good
    assert stack.import_errors() == []
    # roll back to the good version: Airflow is already there
    assert demo.cli("rollback", "--env", "local", "--to", good).returncode == 0


def test_the_dag_processor_pre_imports_the_job_backend_before_it_forks(stack: AirflowAPI, demo: DemoProject):
    # the image's bundle class in the real DAG processor: the manager loads the backend once for its children
    logs = demo.logs("dag-processor")
    assert re.search(r"bundle '[\w-]+': pre-imported DockerJobOperator, the flavor catalog /opt/airflow/platform/"
                     r"flavors.yaml and the asset URI handlers", logs), logs[-3000:]
    assert "not pre-importing" not in logs


def test_zz_print_figures():
    print("\nFIGURES " + json.dumps({k: round(v, 2) for k, v in FIGURES.items()}, indent=1))
