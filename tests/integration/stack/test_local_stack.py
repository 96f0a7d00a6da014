"""End to end on one machine, through the README's commands: up, run the example pipelines, down.

The stack is PostgreSQL + the Airflow components from the built image; every job runs in its own
container on this Docker engine. Each job prints the cgroup limits it got (JOB_LIMITS {...}); the
test reads them back from Airflow's task logs and compares them with the job's flavor.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid

import pytest
import yaml

from ml_platform.flavors import load_catalog
from ml_platform.quantities import cpu_millicores, memory_bytes
from platformctl.stack.api import AirflowAPI
from platformctl.stack.compose import Stack
from tests.conftest import ROOT
from tests.integration.helpers import stack_cli

PROJECT = f"mlp-it-{uuid.uuid4().hex[:6]}"


def cli(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return stack_cli(PROJECT, *args, timeout=timeout)


@pytest.fixture(scope="module")
def stack(docker: str, image: str):
    p = cli("up", "--image", image)
    try:
        assert p.returncode == 0, f"make up failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
        yield AirflowAPI(Stack(ROOT, PROJECT, "stack/compose.yaml").url)
    finally:
        d = cli("down", "--volumes")
        assert d.returncode == 0, d.stderr


def flavor_of(pipeline: str) -> dict[str, str]:
    doc = yaml.safe_load((ROOT / "pipelines" / f"{pipeline}.yaml").read_text())
    default = doc.get("defaults", {}).get("resource_flavor")
    return {name: job.get("resource_flavor", default) for name, job in doc["jobs"].items()}


def job_limits(log: str) -> dict:
    m = re.search(r"JOB_LIMITS (\{.*?\})", log)
    assert m, f"the job printed no JOB_LIMITS line; its log:\n{log[-2000:]}"
    return json.loads(m.group(1))


def last_run(api: AirflowAPI, dag_id: str) -> str:
    runs = api._json("GET", f"/dags/{dag_id}/dagRuns", params={"order_by": "-start_date", "limit": 1})
    return runs["dag_runs"][0]["dag_run_id"]


def test_example_etl_succeeds_with_each_flavors_limits(stack: AirflowAPI):
    p = cli("run", "--pipeline", "example_etl")
    assert p.returncode == 0, f"make run failed (exit {p.returncode}):\n{p.stdout[-4000:]}\n{p.stderr}"
    assert "example_etl run" in p.stdout and ": success in" in p.stdout
    catalog = load_catalog(ROOT / "flavors.yaml")
    expected = flavor_of("example_etl")
    assert set(expected) == {"extract", "transform", "train", "load"}
    assert len(set(expected.values())) > 1, "the demo must show a job with a different flavor"
    run_id = last_run(stack, "example_etl")
    tis = {t["task_id"]: t for t in stack.task_instances("example_etl", run_id)}
    assert {k: v["state"] for k, v in tis.items()} == {k: "success" for k in expected}
    for task, flavor_name in expected.items():
        # the job's own table row in the CLI output: name, state, duration
        assert re.search(rf"^\s+{task}\s+success\s+[\d.]+s$", p.stdout, re.M), task
        limits = job_limits(stack.task_log("example_etl", run_id, task, tis[task]["try_number"]))
        f = catalog.flavors[flavor_name]
        assert limits["step"] == task
        assert limits["cpu_millicores"] == cpu_millicores(f.cpu.limit), (task, flavor_name, limits)
        assert limits["memory_bytes"] == memory_bytes(f.memory.limit), (task, flavor_name, limits)


def test_failing_job_fails_the_run_and_shows_its_log(stack: AirflowAPI):
    p = cli("run", "--pipeline", "example_failing")
    assert p.returncode == 31, f"expected the run to fail (exit 31), got {p.returncode}:\n{p.stdout[-3000:]}"
    assert re.search(r"^\s+extract\s+success", p.stdout, re.M)
    assert re.search(r"^\s+transform\s+failed", p.stdout, re.M)
    assert "transform: failing on purpose (exit 3)" in p.stdout  # the failed job's log tail is shown
    assert "error: pipeline example_failing run" in p.stderr and "transform failed" in p.stderr
