"""The docker backend's job containers name their task instance and try; a new try stops the earlier try's
running container first; on_kill stops the job's container (a fake Docker API client records the calls)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from docker.errors import NotFound

from ml_platform.backends.docker import stop_earlier_tries, task_instance_labels

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _catalog(monkeypatch):
    monkeypatch.setenv("ML_PLATFORM_FLAVORS", str(ROOT / "flavors.yaml"))
    monkeypatch.delenv("ML_PLATFORM_ALLOWED_FLAVORS", raising=False)


def ti(try_number=2, map_index=-1, run_id="manual__2026-12-06T13:50:00+00:00"):
    return SimpleNamespace(dag_id="churn", run_id=run_id, task_id="train", map_index=map_index, try_number=try_number)


class FakeCli:
    """Running containers by labels; filters applied as the Docker API does (every label=value must match)."""

    def __init__(self, containers, gone=()):
        self.running = {c["Id"]: c for c in containers}
        self.gone = set(gone)
        self.calls = []

    def containers(self, filters=None):
        self.calls.append(("containers", filters))
        want = [f.split("=", 1) for f in (filters or {}).get("label", [])]
        return [c for c in self.running.values() if all(c["Labels"].get(k) == v for k, v in want)]

    def stop(self, cid, timeout=None):
        self.calls.append(("stop", cid, timeout))
        if cid in self.gone:
            raise NotFound("gone")
        self.running.pop(cid, None)

    def remove_container(self, cid, force=False):
        self.calls.append(("remove", cid, force))


def container(cid, **labels):
    return {"Id": cid, "State": "running", "Labels": labels}


def test_labels_name_the_task_instance_and_try():
    assert task_instance_labels(ti(3, 4)) == {
        "ml-platform/dag-id": "churn", "ml-platform/run-id": "manual__2026-12-06T13:50:00+00:00",
        "ml-platform/task-id": "train", "ml-platform/map-index": "4", "ml-platform/try-number": "3"}
    assert task_instance_labels(ti(map_index=None))["ml-platform/map-index"] == "-1"


def test_a_new_try_stops_and_removes_only_the_same_task_instances_containers():
    mine = task_instance_labels(ti(1))
    other_map = task_instance_labels(ti(1, map_index=2))
    other_run = task_instance_labels(ti(1, run_id="scheduled__x"))
    cli = FakeCli([container("a" * 12, **mine), container("b" * 12, **other_map), container("c" * 12, **other_run)])
    stopped = stop_earlier_tries(cli, task_instance_labels(ti(2)))
    assert stopped == ["a" * 12]
    assert ("stop", "a" * 12, 10) in cli.calls and ("remove", "a" * 12, True) in cli.calls
    assert set(cli.running) == {"b" * 12, "c" * 12}  # other task instances' jobs run on
    # the filter is by the task instance, not the try
    (_, filters), *_ = cli.calls
    assert sorted(filters["label"]) == sorted(f"{k}={v}" for k, v in mine.items() if not k.endswith("try-number"))


def test_a_container_gone_meanwhile_is_fine_and_nothing_running_is_a_no_op():
    labels = task_instance_labels(ti(1))
    cli = FakeCli([container("a" * 12, **labels)], gone={"a" * 12})
    assert stop_earlier_tries(cli, task_instance_labels(ti(2))) == ["a" * 12]
    assert stop_earlier_tries(FakeCli([]), task_instance_labels(ti(2))) == []


def test_an_engine_error_stops_the_try_before_a_second_job_starts():
    class Broken(FakeCli):
        def stop(self, cid, timeout=None):
            raise RuntimeError("engine said no")

    with pytest.raises(RuntimeError):
        stop_earlier_tries(Broken([container("a" * 12, **task_instance_labels(ti(1)))]), task_instance_labels(ti(2)))


def test_execute_labels_its_container_and_stops_earlier_tries_first(monkeypatch):
    from airflow.providers.docker.operators.docker import DockerOperator
    from airflow.sdk import DAG

    from ml_platform.job import JobOperator

    with DAG("churn", schedule=None):
        op = JobOperator(task_id="train", backend="docker", docker_image="registry.local/ml/churn:1",
                         resource_flavor="cpu-small", command=["true"])
    order = []
    cli = FakeCli([container("a" * 12, **task_instance_labels(ti(1)))])
    monkeypatch.setattr(type(op), "cli", property(lambda self: cli))

    def fake_execute(self, context):
        order.append(("start", dict(self.labels), set(cli.running)))
        return "done"

    monkeypatch.setattr(DockerOperator, "execute", fake_execute)
    assert op.execute({"ti": ti(2)}) == "done"
    (_, labels, running_at_start), = order
    assert running_at_start == set()  # the earlier try's job was stopped before this one started
    assert labels["ml-platform/try-number"] == "2" and labels["ml-platform/flavor"] == "cpu-small"
    assert labels["ml-platform/run-id"] == ti().run_id


def test_on_kill_stops_the_jobs_container(monkeypatch):
    from airflow.sdk import DAG

    from ml_platform.job import JobOperator

    with DAG("churn", schedule=None):
        op = JobOperator(task_id="train", backend="docker", docker_image="registry.local/ml/churn:1",
                         resource_flavor="cpu-small", command=["true"])
    cli = FakeCli([container("j" * 12)])
    monkeypatch.setattr(type(op), "cli", property(lambda self: cli))
    monkeypatch.setattr(type(op), "hook", property(lambda self: SimpleNamespace(client_created=True)))
    op.container = {"Id": "j" * 12}
    op.on_kill()
    assert ("stop", "j" * 12, None) in cli.calls and not cli.running


def test_the_job_gets_the_bundle_version_its_try_runs(monkeypatch):
    from airflow.providers.docker.operators.docker import DockerOperator
    from airflow.sdk import DAG

    from ml_platform.job import JobOperator

    with DAG("churn", schedule=None):
        op = JobOperator(task_id="train", backend="docker", docker_image="registry.local/ml/churn:1",
                         resource_flavor="cpu-small", command=["true"], env={"A": "1"})
    monkeypatch.setattr(type(op), "cli", property(lambda self: FakeCli([])))
    seen = {}
    monkeypatch.setattr(DockerOperator, "execute", lambda self, context: seen.update(self.environment))
    t = ti(1)
    t.bundle_instance = SimpleNamespace(version="b-0123456789abcdef")
    op.execute({"ti": t})
    assert seen == {"A": "1", "ML_PLATFORM_BUNDLE_VERSION": "b-0123456789abcdef"}
