"""make run's follower against a scripted API: states, durations, log tails, exit code."""

from __future__ import annotations

import pytest

from platformctl.stack.api import log_text
from platformctl.stack.compose import Stack, read_env
from platformctl.errors import RunFailed, StackError
from platformctl.stack.follow import check, run_pipeline


class FakeAPI:
    base_url = "http://127.0.0.1:1"

    def __init__(self, final: dict[str, str], polls: int = 2):
        self.final, self.polls, self.calls = final, polls, 0
        self.unpaused = False

    def healthy(self):
        return True

    def wait_for_dag(self, dag_id):
        return {"dag_id": dag_id, "is_paused": True}

    def unpause(self, dag_id):
        self.unpaused = True

    def trigger(self, dag_id, note=None):
        return {"dag_run_id": "manual__1", "state": "queued"}

    def task_instances(self, dag_id, run_id):
        done = self.calls >= self.polls
        return [{"task_id": t, "state": s if done else "running", "duration": 1.5 if done else None,
                 "try_number": 1, "start_date": f"2026-01-01T00:00:0{i}"} for i, (t, s) in enumerate(self.final.items())]

    def run(self, dag_id, run_id):
        self.calls += 1
        if self.calls <= self.polls:
            return {"state": "running"}
        return {"state": "failed" if "failed" in self.final.values() else "success"}

    def task_log(self, dag_id, run_id, task_id, try_number):
        return "\n".join(f"{task_id} line {i}" for i in range(50))


def test_success_prints_every_job_state_duration_and_tail():
    out: list[str] = []
    api = FakeAPI({"extract": "success", "train": "success"})
    r = run_pipeline(api, "p", poll=0, tail=3, echo=out.append)
    check(r)
    text = "\n".join(out)
    assert api.unpaused and r.ok
    assert "p run manual__1: success" in text
    assert "  extract                  success          1.5s" in text
    assert "  train line 49" in text and "  train line 46" not in text  # tail of 3


def test_failure_shows_longer_tail_and_raises_with_the_failed_jobs():
    out: list[str] = []
    r = run_pipeline(FakeAPI({"extract": "success", "transform": "failed", "load": "upstream_failed"}),
                     "p", poll=0, tail=3, echo=out.append)
    text = "\n".join(out)
    assert "transform line 20" in text  # failed jobs get at least 30 lines
    assert "load line" not in text       # never ran: no log
    with pytest.raises(RunFailed) as e:
        check(r)
    assert e.value.exit_code == 31 and "transform failed" in e.value.one_line()


def test_structured_log_lines_and_exception_detail():
    content = [{"event": "::group::Log message source details", "sources": ["/x"]},
               {"event": "hello", "timestamp": "t"},
               {"event": "Task failed with exception", "error_detail": [{"exc_type": "ValueError", "exc_value": "bad"}]}]
    assert log_text(content) == "hello\nTask failed with exception\nValueError: bad"
    assert log_text("plain") == "plain"


def test_stack_state_keeps_its_secrets_and_is_private(tmp_path):
    s = Stack(tmp_path, "demo", "stack/compose.yaml")
    with pytest.raises(StackError, match="make up"):
        _ = s.url
    a = s.write_state(platform_image="img:1", postgres_image="pg:15", port=18123)
    b = s.write_state(platform_image="img:2", postgres_image="pg:15", port=18123)
    assert a["POSTGRES_PASSWORD"] == b["POSTGRES_PASSWORD"] and a["JWT_SECRET"] == b["JWT_SECRET"]
    assert read_env(s.env_file)["PLATFORM_IMAGE"] == "img:2"
    assert s.env_file.stat().st_mode & 0o077 == 0
    assert s.url == "http://127.0.0.1:18123"


def test_exported_variables_do_not_override_the_stack_state(monkeypatch, tmp_path):
    from platformctl.stack.compose import STATE_KEYS, compose_env

    monkeypatch.setenv("AIRFLOW_PORT", "1")
    monkeypatch.setenv("PLATFORM_IMAGE", "other:1")
    env = compose_env()
    assert "AIRFLOW_PORT" not in env and "PLATFORM_IMAGE" not in env and "PATH" in env
    written = Stack(tmp_path, "demo", "x").write_state(platform_image="i", postgres_image="p", port=2)
    assert set(written) == set(STATE_KEYS)


class MappedAPI(FakeAPI):
    """A run with a job mapped over three items: one task id, three map indexes, one log each."""

    def trigger(self, dag_id, note=None, conf=None):
        self.conf = conf
        return {"dag_run_id": "manual__2", "state": "queued"}

    def task_instances(self, dag_id, run_id):
        return [{"task_id": "training.train", "map_index": i, "state": "failed" if i == 2 else "success",
                 "duration": 1.0, "try_number": 1, "start_date": f"2026-01-01T00:00:0{i}"} for i in range(3)]

    def task_log(self, dag_id, run_id, task_id, try_number, map_index=-1):
        return f"JOB_LIMITS for item {map_index}"


def test_mapped_jobs_are_shown_one_per_item_with_their_own_log_and_conf_reaches_the_trigger():
    out: list[str] = []
    api = MappedAPI({"training.train": "failed"}, polls=0)
    r = run_pipeline(api, "p", poll=0, echo=out.append, conf={"epochs": 3})
    text = "\n".join(out)
    assert api.conf == {"epochs": 3}
    assert [j.label for j in r.jobs] == ["training.train[0]", "training.train[1]", "training.train[2]"]
    for i in range(3):
        assert f"JOB_LIMITS for item {i}" in text
    with pytest.raises(RunFailed, match=r"training.train\[2\] failed"):
        check(r)
