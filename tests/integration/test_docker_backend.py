"""The docker backend runs a real container with the flavor's limits; exit code and logs reach Airflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from ml_platform.flavors import load_catalog
from ml_platform.quantities import cpu_millicores, memory_bytes
from tests.conftest import ROOT, base_image, require

JOB_IMAGE = base_image()

# Prints the cgroup limits the job sees (v1 or v2), then succeeds or fails as told.
JOB = ("import pathlib as p, sys\n"
       "def r(*c):\n"
       "    for f in c:\n"
       "        f = p.Path('/sys/fs/cgroup') / f\n"
       "        if f.exists(): return f.read_text().strip()\n"
       "print('job-cpu', r('cpu.max', 'cpu/cpu.cfs_quota_us'), 'job-mem', r('memory.max', 'memory/memory.limit_in_bytes'))\n"
       "print('hello-from-job'); sys.exit(int(sys.argv[1]))\n")

DAG_SCRIPT = """
import sys
from airflow.sdk import DAG
from ml_platform.job import JobOperator
with DAG("docker_backend_test", schedule=None, catchup=False) as dag:
    JobOperator(task_id="job", backend="docker", docker_image={image!r}, resource_flavor={flavor!r},
                command=["python3", "-c", {job!r}, {code!r}], auto_remove="never",
                labels={{"ml-platform/test-run": {run!r}}})
"""


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("airflow-home")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
           "ML_PLATFORM_FLAVORS": str(ROOT / "flavors.yaml"), "DOCKER_HOST": "unix:///var/run/docker.sock"}
    env.pop("ML_PLATFORM_ALLOWED_FLAVORS", None)
    p = subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], env=env,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return env


def run_job(docker, env, flavor: str, code: int, tmp_path: Path):
    require(subprocess.run([docker, "image", "inspect", JOB_IMAGE], capture_output=True).returncode == 0,
            f"job image {JOB_IMAGE} missing: run scripts/make-base-image.sh")
    run = uuid.uuid4().hex[:12]
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "docker_backend_test.py").write_text(
        DAG_SCRIPT.format(image=JOB_IMAGE, flavor=flavor, job=JOB, code=str(code), run=run))
    airflow = str(Path(sys.executable).parent / "airflow")
    env = {**env, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}
    subprocess.run([airflow, "dags", "reserialize"], env=env, capture_output=True, text=True, timeout=300)
    p = subprocess.run([airflow, "dags", "test", "docker_backend_test"], env=env, capture_output=True, text=True,
                       timeout=300)
    ids = subprocess.run([docker, "ps", "-aq", "--filter", f"label=ml-platform/test-run={run}"],
                         capture_output=True, text=True).stdout.split()
    info = json.loads(subprocess.run([docker, "inspect", *ids], capture_output=True, text=True).stdout or "[]")
    subprocess.run([docker, "rm", "-f", *ids], capture_output=True)
    return p, info


def test_job_runs_in_a_real_container_with_the_flavor_limits(docker, airflow_home, tmp_path):
    flavor = load_catalog(ROOT / "flavors.yaml").flavors["cpu-small"]
    p, info = run_job(docker, airflow_home, "cpu-small", 0, tmp_path)
    out = p.stdout + p.stderr
    assert p.returncode == 0 and "state=success" in out.replace(" ", ""), out[-4000:]
    assert "hello-from-job" in out  # the job's log reached Airflow
    (c,) = info
    assert c["State"]["ExitCode"] == 0
    assert c["HostConfig"]["NanoCpus"] == cpu_millicores(flavor.cpu.limit) * 10**6
    assert c["HostConfig"]["Memory"] == memory_bytes(flavor.memory.limit)
    # and the job itself saw them: CFS quota for 1 CPU (v1: 100000 per 100000 period) and 1Gi memory
    quota = 100000 * cpu_millicores(flavor.cpu.limit) // 1000
    assert f"job-cpu {quota}" in out or f"job-cpu {quota} 100000" in out, out[-3000:]
    assert f"job-mem {memory_bytes(flavor.memory.limit)}" in out


def test_failing_job_fails_the_task(docker, airflow_home, tmp_path):
    p, info = run_job(docker, airflow_home, "cpu-small", 3, tmp_path)
    out = p.stdout + p.stderr
    assert "state=failed" in out.replace(" ", ""), out[-4000:]
    assert "hello-from-job" in out
    (c,) = info
    assert c["State"]["ExitCode"] == 3
