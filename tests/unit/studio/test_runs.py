"""The studio's run status (issue 40): each job's state, try, duration, mapped counts and why it did not run,
from Airflow's task-instance list as /api/v2 returns it."""

from __future__ import annotations

from platformctl.studio.runs import summarize, why_not_run


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
    assert s["seg"]["mapped"] == {"count": 3, "states": {"success": 2, "failed": 1}}
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
