"""`make run PIPELINE=...`: trigger a DAG run through the REST API and follow it to the end."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from .api import AirflowAPI, ApiTimeout
from ..wait import wait_until
from ..errors import RunFailed, StackError
from ..output import say

FINAL_RUN = {"success", "failed"}
FAILED_TASK = {"failed", "upstream_failed"}


@dataclass
class JobResult:
    task_id: str
    state: str | None
    duration: float | None
    try_number: int
    log: str = ""
    map_index: int = -1  # a mapped job's index (dynamic task mapping); -1 for a job that is not mapped

    @property
    def label(self) -> str:
        return f"{self.task_id}[{self.map_index}]" if self.map_index >= 0 else self.task_id


def _label(ti: dict) -> str:
    mi = ti.get("map_index", -1)
    return f"{ti['task_id']}[{mi}]" if mi is not None and mi >= 0 else ti["task_id"]


@dataclass
class RunResult:
    dag_id: str
    run_id: str
    state: str
    seconds: float
    jobs: list[JobResult]

    @property
    def ok(self) -> bool:
        return self.state == "success"


def _ts() -> str:
    return datetime.now().strftime("%H:%M:%S")


def _tail(text: str, n: int) -> list[str]:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("::")]
    return lines[-n:]


def run_pipeline(api: AirflowAPI, dag_id: str, *, timeout: float = 900, poll: float = 2.0,
                 tail: int = 8, echo=say, conf: dict | None = None) -> RunResult:
    if not api.healthy():
        raise StackError(f"Airflow at {api.base_url} is not healthy", "start the stack with make up")
    echo(f"{_ts()} waiting for DAG {dag_id} to be parsed")
    dag = api.wait_for_dag(dag_id)
    if dag.get("is_paused"):
        api.unpause(dag_id)
    run = api.trigger(dag_id, conf=conf, note="make run") if conf else api.trigger(dag_id, note="make run")
    run_id = run["dag_run_id"]
    echo(f"{_ts()} triggered {dag_id} run {run_id}  ({api.base_url}/dags/{dag_id}/runs/{run_id})")
    return follow_run(api, dag_id, run_id, timeout=timeout, poll=poll, tail=tail, echo=echo)


def follow_run(api: AirflowAPI, dag_id: str, run_id: str, *, timeout: float = 900, poll: float = 2.0,
               tail: int = 8, echo=say) -> RunResult:
    """Print each job's state changes until the run ends, then the table and the log tails."""
    start = time.monotonic()
    seen: dict[str, str | None] = {}
    def poll_once() -> str | None:
        """Print the task state changes; the run's state once it is final."""
        try:
            tis = api.task_instances(dag_id, run_id)
            run_state = api.run(dag_id, run_id).get("state")
        except ApiTimeout as exc:  # a slow poll is not a failed run: poll again until the timeout
            echo(f"{_ts()}   ({exc.message}; polling again)")
            return None
        for ti in sorted(tis, key=lambda t: (t.get("start_date") or "9", t["task_id"], t.get("map_index", -1))):
            st = ti.get("state")
            if seen.get(_label(ti), "?") != st:
                seen[_label(ti)] = st
                dur = f"  {ti['duration']:.1f}s" if ti.get("duration") is not None else ""
                echo(f"{_ts()}   {_label(ti):<24} {st or 'none'}{dur}")
        return run_state if run_state in FINAL_RUN else None

    state = wait_until(poll_once, timeout=timeout, poll=poll, timeout_error=lambda: RunFailed(
        f"run {run_id} of {dag_id} did not finish within {timeout:.0f}s",
        f"see {api.base_url}/dags/{dag_id}/runs/{run_id}; raise --timeout"))
    seconds = round(time.monotonic() - start, 1)  # the run's own time: its jobs' logs are read below
    jobs: list[JobResult] = []
    for ti in sorted(api.task_instances(dag_id, run_id), key=lambda t: (t.get("start_date") or "9", t["task_id"],
                                                                         t.get("map_index", -1))):
        tn = max(int(ti.get("try_number") or 0), 1)
        mi = ti.get("map_index", -1)
        mi = -1 if mi is None else mi
        args = (dag_id, run_id, ti["task_id"], tn) + ((mi,) if mi >= 0 else ())
        log = api.task_log(*args) if ti.get("state") not in (None, "upstream_failed") else ""
        jobs.append(JobResult(ti["task_id"], ti.get("state"), ti.get("duration"), tn, log, mi))
    result = RunResult(dag_id, run_id, state, seconds, jobs)
    _report(result, tail, echo)
    return result


def _report(r: RunResult, tail: int, echo) -> None:
    echo("")
    echo(f"{r.dag_id} run {r.run_id}: {r.state} in {r.seconds}s")
    echo(f"  {'job':<24} {'state':<16} duration")
    for j in r.jobs:
        dur = f"{j.duration:.1f}s" if j.duration is not None else "-"
        echo(f"  {j.label:<24} {j.state or 'none':<16} {dur}")
    for j in r.jobs:
        if not j.log:
            continue
        n = max(tail, 30) if j.state in FAILED_TASK else tail
        echo(f"--- {j.label} ({j.state}) last {n} log lines ---")
        for line in _tail(j.log, n):
            echo(f"  {line}")


def check(r: RunResult) -> None:
    if not r.ok:
        bad = [j.label for j in r.jobs if j.state == "failed"]
        skipped = [j.label for j in r.jobs if j.state == "upstream_failed"]
        raise RunFailed(f"pipeline {r.dag_id} run {r.run_id} {r.state}"
                        + (f": {', '.join(bad)} failed" if bad else "")
                        + (f"; {', '.join(skipped)} not run (upstream failed)" if skipped else ""),
                        "read the job logs above, fix the job or pipelines/<name>.yaml, make run again")


def wait_for_bundle(api: AirflowAPI, dag_id: str, version: str, *, timeout: float = 120, poll: float = 0.5,
                    echo=say) -> float:
    """Wait until Airflow has parsed `dag_id` from bundle `version`; returns the seconds it took."""
    start = time.monotonic()
    echo(f"{_ts()} waiting for Airflow to run bundle {version}")
    seen = None
    while True:
        d = api.dag(dag_id)
        seen = (d or {}).get("bundle_version")
        if seen == version:
            took = time.monotonic() - start
            echo(f"{_ts()} Airflow runs bundle {version} ({took:.1f}s after the deploy)")
            return took
        if time.monotonic() - start > timeout:
            raise StackError(f"Airflow still runs bundle {seen or 'none'} for {dag_id} {timeout:.0f}s after "
                             f"{version} went live", "read the DAG processor's log: docker compose -p <project> "
                             "logs dag-processor (a refused version is named there)")
        time.sleep(poll)
