"""The docker backend on the real engine: a new try stops and removes the earlier try's still-running job
container before its own job starts (so a task instance never has two live jobs), its container carries
the task instance's labels, and on_kill stops a running job."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from types import SimpleNamespace

import pytest

from tests.conftest import ROOT, base_image, require

JOB_IMAGE = base_image()


@pytest.fixture(autouse=True)
def _env(monkeypatch, docker):
    require(subprocess.run([docker, "image", "inspect", JOB_IMAGE], capture_output=True).returncode == 0,
            f"job image {JOB_IMAGE} missing: run scripts/make-base-image.sh")
    monkeypatch.setenv("ML_PLATFORM_FLAVORS", str(ROOT / "flavors.yaml"))
    monkeypatch.delenv("ML_PLATFORM_ALLOWED_FLAVORS", raising=False)
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")


def ti(dag_id: str, try_number: int):
    return SimpleNamespace(dag_id=dag_id, run_id="manual__2026-12-06T14:00:00+00:00", task_id="train", map_index=-1,
                           try_number=try_number, bundle_instance=SimpleNamespace(version="b-00000000000000aa"))


def operator(dag_id: str, command: list[str]):
    from airflow.sdk import DAG

    from ml_platform.job import JobOperator

    with DAG(dag_id, schedule=None):
        return JobOperator(task_id="train", backend="docker", docker_image=JOB_IMAGE, resource_flavor="cpu-small",
                           command=command, auto_remove="never")


def containers(docker: str, dag_id: str, *, running_only: bool = False) -> list[str]:
    return subprocess.run([docker, "ps", "-q", *([] if running_only else ["-a"]),
                           "--filter", f"label=ml-platform/dag-id={dag_id}"], capture_output=True, text=True).stdout.split()


def test_a_new_try_stops_the_earlier_try_s_running_job_first(docker):
    from ml_platform.backends.docker import task_instance_labels

    dag_id = f"tries_{uuid.uuid4().hex[:8]}"
    labels = task_instance_labels(ti(dag_id, 1))
    lost = subprocess.run([docker, "run", "-d", *[a for k, v in labels.items() for a in ("--label", f"{k}={v}")],
                           JOB_IMAGE, "sleep", "300"], capture_output=True, text=True, check=True).stdout.strip()
    try:
        op = operator(dag_id, ["sh", "-c", "echo running try 2 with $ML_PLATFORM_BUNDLE_VERSION"])
        t0 = time.monotonic()
        assert op.execute({"ti": ti(dag_id, 2)}) == "running try 2 with b-00000000000000aa"
        # the lost try's container is gone (stopped, removed); only try 2's (exited 0) remains
        gone = subprocess.run([docker, "inspect", lost], capture_output=True).returncode != 0
        assert gone, "the earlier try's container is still there"
        (mine,) = containers(docker, dag_id)
        got = subprocess.run([docker, "inspect", "-f", "{{json .Config.Labels}}", mine], capture_output=True,
                             text=True, check=True).stdout
        import json

        got = json.loads(got)
        assert {k: got[k] for k in labels} == {**labels, "ml-platform/try-number": "2"}
        assert got["ml-platform/bundle-version"] == "b-00000000000000aa"
        print(f"earlier try stopped and the new try's job run: {time.monotonic() - t0:.1f}s")
    finally:
        subprocess.run([docker, "rm", "-f", lost, *containers(docker, dag_id)], capture_output=True)


def test_on_kill_stops_the_running_job(docker):
    dag_id = f"kill_{uuid.uuid4().hex[:8]}"
    op = operator(dag_id, ["sleep", "300"])
    outcome = {}

    def run():
        try:
            outcome["result"] = op.execute({"ti": ti(dag_id, 1)})
        except Exception as exc:  # noqa: BLE001 - the killed job fails its try
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while not containers(docker, dag_id, running_only=True):
            assert time.monotonic() < deadline and worker.is_alive(), outcome
            time.sleep(0.5)
        t0 = time.monotonic()
        op.on_kill()
        worker.join(60)
        assert not worker.is_alive() and "error" in outcome, outcome
        assert containers(docker, dag_id, running_only=True) == []
        assert time.monotonic() - t0 < 30  # SIGTERM, then SIGKILL after 10 s: not the job's 300 s
    finally:
        subprocess.run([docker, "rm", "-f", *containers(docker, dag_id)], capture_output=True)
