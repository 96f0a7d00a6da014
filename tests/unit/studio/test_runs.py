"""The studio's run status (issue 40): each job's state, try, duration, mapped counts and why it did not run,
from Airflow's task-instance list as /api/v2 returns it."""

from __future__ import annotations

import time

import pytest

from platformctl.studio import runs
from platformctl.studio.runs import Runner, summarize, why_not_run

from .airflow_standin import StandinAirflow


def ti(task, state, tn=1, dur=None, mi=-1):
    return {"task_id": task, "state": state, "try_number": tn, "duration": dur, "map_index": mi}


def test_plain_jobs():
    s = summarize([ti("extract", "success", 1, 2.5), ti("transform", "failed", 2, 1.0),
                   ti("train", "upstream_failed", 0), ti("load", None, 0)])
    assert s["extract"] == {"state": "success", "try_number": 1, "duration": 2.5, "mapped": None}
    assert s["transform"]["state"] == "failed" and s["transform"]["try_number"] == 2
    assert s["train"]["state"] == "upstream_failed" and s["load"]["state"] is None


def test_mapped_jobs_count_their_instances():
    s = summarize([ti("seg", "success", 1, 3.0, 0), ti("seg", "failed", 2, 5.0, 1), ti("seg", "success", 1, 1.0, 2)])
    m = s["seg"]["mapped"]
    assert (m["count"], m["states"], len(m["instances"])) == (3, {"success": 2, "failed": 1}, 3)
    assert s["seg"]["state"] == "failed" and s["seg"]["try_number"] == 2 and s["seg"]["duration"] == 5.0
    s = summarize([ti("seg", "running", 1, None, 0), ti("seg", "success", 1, 1.0, 1)])
    assert s["seg"]["state"] == "running"
    s = summarize([ti("seg", "success", 1, 1.0, 0), ti("seg", "skipped", 1, 0.0, 1)])
    assert s["seg"]["state"] == "success"


def test_a_job_the_run_did_not_reach_says_why():
    assert why_not_run("upstream_failed", False) == "not run: a job it depends on failed"
    assert why_not_run(None, False).startswith("not yet")
    assert why_not_run(None, True) == "not run: the run ended before it"
    assert why_not_run("success", True) is None and why_not_run("skipped", True) == "skipped"


def test_mapped_jobs_list_each_instance_by_index():
    s = summarize([ti("seg", "failed", 2, 5.0, 1), ti("seg", "success", 1, 3.0, 0), ti("seg", None, 0, None, 2)])
    assert s["seg"]["mapped"]["instances"] == [
        {"map_index": 0, "state": "success", "try_number": 1, "duration": 3.0},
        {"map_index": 1, "state": "failed", "try_number": 2, "duration": 5.0},
        {"map_index": 2, "state": None, "try_number": 0, "duration": None}]


# -- the runner against a stand-in for Airflow's API (what it asks, how often) ------------------------------

def standin_run(n: int, state: str = "running"):
    tis = [ti(f"job_{i:03d}", "success" if i % 3 else "running", 1, 1.0) for i in range(n)]
    tis += [ti("seg", st, tn, 1.0, mi) for mi, (st, tn) in enumerate([("success", 1), ("failed", 2), ("running", 1)])]
    return [("run_1", state, tis)]


@pytest.fixture
def airflow():
    with StandinAirflow(page_limit=100) as a:
        yield a


def test_a_run_bigger_than_one_page_is_read_whole(airflow, tmp_path):
    airflow.runs["big"] = standin_run(150)
    r = Runner(tmp_path, airflow_url=airflow.url)
    st = r.status("pipelines/big.yaml", "big")
    assert st["run_id"] == "run_1" and st["live"] is True
    assert len(st["jobs"]) == 151 and st["jobs"]["job_149"]["state"] == "success"
    assert airflow.requests["task_instances"] == 2 and st["requests"] == 2
    assert st["poll_after"] == 2 * runs.MIN_POLL  # two requests a read: the page waits twice as long


def test_several_pages_polling_one_run_cost_one_read_per_interval(airflow, tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "MIN_POLL", 0.3)
    airflow.runs["p"] = standin_run(5)
    r = Runner(tmp_path, airflow_url=airflow.url)
    first = r.status("pipelines/p.yaml", "p")
    again = [r.status("pipelines/p.yaml", "p") for _ in range(5)]  # other tabs, within the interval
    assert airflow.requests["task_instances"] == 1 and [a["requests"] for a in again] == [0] * 5
    assert all(a["jobs"] == first["jobs"] for a in again)
    time.sleep(0.35)
    airflow.runs["p"][0][2][0]["state"] = "failed"
    later = r.status("pipelines/p.yaml", "p")
    assert airflow.requests["task_instances"] == 2 and later["jobs"]["job_000"]["state"] == "failed"
    assert r.calls == sum(airflow.requests.values())  # every HTTP request counted, health and last run too


def test_a_finished_run_is_confirmed_once_then_polling_stops(airflow, tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "MIN_POLL", 0.0)
    airflow.runs["p"] = [("run_1", "failed", [ti("a", "success"), ti("b", "failed"), ti("c", "upstream_failed", 0)])]
    r = Runner(tmp_path, airflow_url=airflow.url)
    st = r.status("pipelines/p.yaml", "p")
    assert st["live"] is False and st["run_state"] == "failed" and airflow.requests["run"] == 1
    assert st["jobs"]["c"]["why"] == "not run: a job it depends on failed"
    r.status("pipelines/p.yaml", "p")
    assert airflow.requests["run"] == 1


def test_the_log_of_the_map_index_asked_for(airflow, tmp_path):
    airflow.runs["p"] = standin_run(1)
    r = Runner(tmp_path, airflow_url=airflow.url)
    seg = r.status("pipelines/p.yaml", "p")["jobs"]["seg"]
    one = seg["mapped"]["instances"][1]
    assert one == {"map_index": 1, "state": "failed", "try_number": 2, "duration": 1.0}
    assert r.log("pipelines/p.yaml", "seg", one["try_number"], 1) == {"log": "log of seg map index 1 try 2"}
    assert r.log("pipelines/p.yaml", "job_000", 1) == {"log": "log of job_000 map index -1 try 1"}


def test_no_stack_no_states(tmp_path):
    r = Runner(tmp_path, airflow_url="http://127.0.0.1:1")
    assert r.status("pipelines/p.yaml", "p") == {"stage": None, "run_id": None, "jobs": {}, "progress": [], "live": False}
