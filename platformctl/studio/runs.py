"""Run a pipeline from the studio on the local stack (issue 40): deploy to `local`, start the stack when it
is not up, trigger the DAG, and report each job's live state, try number, duration and log.

The same steps as `make up` / `make run` (the services in platformctl/services/stack.py: up, deploy_local;
stack/follow.py: wait_for_bundle), started in a background thread per pipeline, so the page polls a status that is cheap:
one Airflow request per poll while a run is live (the task-instance list; the run's own state is read
from it: a run is over when no task instance is waiting or running any more, then confirmed once). A run's
list is read at most once per MIN_POLL seconds (times the requests one read took), however many pages poll
it: what is read then is served to every page until it is that old.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PlatformError

MIN_POLL = 1.0  # seconds between two reads of one run's task instances (per request one read takes)
LIVE_TI = {None, "scheduled", "queued", "running", "up_for_retry", "up_for_reschedule", "deferred", "restarting"}
FINAL_RUN = {"success", "failed"}


@dataclass
class RunJob:
    """One studio run of one pipeline: where it is (stage), what it said (progress), and the DAG run."""

    file: str
    dag_id: str
    stage: str = "starting"
    progress: list[str] = field(default_factory=list)
    run_id: str | None = None
    error: str | None = None
    run_state: str | None = None
    started: float = field(default_factory=time.time)
    jobs: dict = field(default_factory=dict)  # the last states read: kept on the graph through a slow poll
    tis: list | None = None  # the last task-instance list read, when (monotonic) and how many requests it took
    tis_at: float = 0.0
    tis_requests: int = 1
    read_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def say(self, line: str) -> None:
        self.progress.append(f"{time.strftime('%H:%M:%S')} {line}")
        del self.progress[:-50]

    @property
    def preparing(self) -> bool:
        return self.run_id is None and self.error is None


def summarize(tis: list[dict]) -> dict:
    """Per task id: its state, try number, duration; a mapped job's count, the states of its instances and
    each instance (map index, state, try number, duration: the page picks the index whose log it shows)."""
    out: dict[str, dict] = {}
    for ti in tis:
        tid, mi = ti["task_id"], ti.get("map_index", -1)
        mi = -1 if mi is None else mi
        row = out.setdefault(tid, {"state": None, "try_number": 0, "duration": None, "mapped": None})
        if mi < 0:
            row.update(state=ti.get("state"), try_number=int(ti.get("try_number") or 0), duration=ti.get("duration"))
            continue
        m = row["mapped"] = row["mapped"] or {"count": 0, "states": {}, "instances": []}
        m["count"] += 1
        st = ti.get("state") or "none"
        m["states"][st] = m["states"].get(st, 0) + 1
        m["instances"].append({"map_index": mi, "state": ti.get("state"), "try_number": int(ti.get("try_number") or 0),
                               "duration": ti.get("duration")})
        row["try_number"] = max(row["try_number"], int(ti.get("try_number") or 0))
        row["duration"] = max(row["duration"] or 0, ti.get("duration") or 0)
    for row in out.values():  # a mapped job's state: failed if any failed, running if any live, else success
        m = row["mapped"]
        if m:
            m["instances"].sort(key=lambda i: i["map_index"])
            states = m["states"]
            row["state"] = ("failed" if states.get("failed") else "running" if states.get("running") else
                            "queued" if set(states) & {"queued", "scheduled", "none"} else
                            "up_for_retry" if states.get("up_for_retry") else
                            "success" if set(states) <= {"success", "skipped"} else next(iter(states)))
    return out


def why_not_run(state: str | None, run_over: bool) -> str | None:
    if state == "upstream_failed":
        return "not run: a job it depends on failed"
    if state == "skipped":
        return "skipped"
    if state is None:
        return "not run: the run ended before it" if run_over else "not yet: waiting for the jobs it depends on"
    return None


class Runner:
    """The studio's runs, per pipeline file. `project` is the local stack's compose project; `airflow_url`
    the Airflow API to read instead of the stack's (a proxy or a stand-in: the bench and the tests)."""

    def __init__(self, root: Path, project: str | None = None, image: str | None = None,
                 airflow_url: str | None = None):
        self.root = root
        self.project = project or os.environ.get("STACK_PROJECT", "ml-platform")
        self.image = image or os.environ.get("STUDIO_IMAGE") or None
        self.airflow_url = airflow_url
        self.jobs: dict[str, RunJob] = {}
        self.calls = 0  # answers from Airflow's API to this runner's clients (a read urllib3 retried: one)
        self._lock = threading.Lock()
        self._apis: dict[str, object] = {}
        self._mine = threading.local()  # the requests made by this thread (a read's own count)

    # -- the stack ----------------------------------------------------------------------------------
    def _cfg(self):
        from ..config import load_config

        return load_config(self.root)

    def _stack(self):
        from ..services.stack import stack_of

        return stack_of(self.root, self._cfg(), self.project)

    def api(self):
        """The local stack's Airflow API, or None when this project has no stack state (never started). One
        client (one keep-alive connection pool) per URL; each answer it gets is counted (self.calls)."""
        from ..stack.api import AirflowAPI

        try:
            if self.airflow_url:
                url = self.airflow_url
            else:
                stack = self._stack()
                if not stack.env_file.exists():
                    return None
                url = stack.url
        except PlatformError:
            return None
        with self._lock:
            api = self._apis.get(url)
            if api is None:
                api = self._apis[url] = AirflowAPI(url, timeout=30)
                api.session.hooks["response"].append(self._counted)
        return api

    def _counted(self, response, *args, **kwargs):
        with self._lock:
            self.calls += 1
        self._mine.n = getattr(self._mine, "n", 0) + 1
        return response

    def _read_tis(self, api, job: RunJob) -> tuple[list[dict], int]:
        """The run's task instances and how many requests this call made (0: the last read, younger than
        MIN_POLL per request it took, served again: several pages polling one run cost one read)."""
        with job.read_lock:
            if job.tis is not None and time.monotonic() - job.tis_at < MIN_POLL * job.tis_requests:
                return job.tis, 0
            n0 = getattr(self._mine, "n", 0)
            tis = api.task_instances(job.dag_id, job.run_id)
            job.tis, job.tis_at = tis, time.monotonic()
            job.tis_requests = max(1, getattr(self._mine, "n", 0) - n0)
            return tis, job.tis_requests

    # -- a run --------------------------------------------------------------------------------------
    def start(self, file: str, dag_id: str, conf: dict | None) -> RunJob:
        with self._lock:
            job = self.jobs.get(file)
            if job is not None and job.preparing:
                return job  # one start at a time per pipeline
            job = self.jobs[file] = RunJob(file, dag_id)
        threading.Thread(target=self._run, args=(job, conf), name=f"studio-run-{dag_id}", daemon=True).start()
        return job

    def _run(self, job: RunJob, conf: dict | None) -> None:
        from ..services import stack as stack_service
        from ..stack.follow import wait_for_bundle

        try:
            api = self.api()
            if api is None or not api.healthy():
                job.stage = "starting the local stack"
                job.say("the local stack is not up: starting it (deploys first; a first start takes minutes)")
                stack_service.up(self.root, {}, stack_service.UpOptions(project=self.project, image=self.image),
                                 echo=job.say)
                api = self.api()
                job.say(f"the local stack is up at {api.base_url}")
            stack = self._stack()
            job.stage = "deploying to local"
            job.say("rendering, validating and deploying the pipelines to the local environment")
            deployed = stack_service.deploy_local(self.root, self._cfg(), airflow_url=stack.url, state=stack.state(),
                                                  echo=job.say)
            job.say(f"bundle {deployed.version} is live" + ("" if deployed.changed else " (unchanged)"))
            if deployed.changed:
                job.stage = "waiting for Airflow to load the bundle"
                wait_for_bundle(api, job.dag_id, deployed.version, timeout=180, echo=job.say)
            job.stage = "triggering"
            dag = api.wait_for_dag(job.dag_id, timeout=180)
            if dag.get("is_paused"):
                api.unpause(job.dag_id)
            run = api.trigger(job.dag_id, conf=conf or None, note="studio")
            job.run_id = run["dag_run_id"]
            job.stage = "running"
            job.say(f"triggered run {job.run_id}")
        except PlatformError as exc:
            job.error = exc.one_line()
            job.stage = "failed to start"
            job.say(job.error)
        except Exception as exc:  # noqa: BLE001 - shown on the page, one line, instead of a silent thread death
            job.error = f"{type(exc).__name__}: {exc}"
            job.stage = "failed to start"
            job.say(job.error)

    def last_run(self, dag_id: str) -> str | None:
        api = self.api()
        if api is None:
            return None
        try:
            if not api.healthy():
                return None
            runs = api._json("GET", f"/dags/{dag_id}/dagRuns", ok=(200, 404),
                             params={"order_by": "-start_date", "limit": 1}).get("dag_runs") or []
        except PlatformError:
            return None
        return runs[0]["dag_run_id"] if runs else None

    def status(self, file: str, dag_id: str) -> dict:
        """What the page draws. While a run is live: one task-instance list request per call."""
        job = self.jobs.get(file)
        if job is None:  # opening a pipeline shows its last run's states (from the stack, if it is up)
            run_id = self.last_run(dag_id)
            if run_id is None:
                return {"stage": None, "run_id": None, "jobs": {}, "progress": [], "live": False}
            job = self.jobs[file] = RunJob(file, dag_id, stage="last run", run_id=run_id)
        out = {"stage": job.stage, "run_id": job.run_id, "error": job.error, "progress": list(job.progress),
               "jobs": {}, "live": job.preparing, "run_state": job.run_state, "requests": 0,
               "poll_after": MIN_POLL}
        if job.run_id is None:
            return out
        api = self.api()
        if api is None:
            out.update(error="the local stack is not up", jobs=job.jobs, live=False)
            return out
        try:
            tis, out["requests"] = self._read_tis(api, job)
            out["poll_after"] = MIN_POLL * job.tis_requests  # the page's next poll: <= 1 request a second
            live = any(t.get("state") in LIVE_TI for t in tis) or not tis
            if not live and job.run_state not in FINAL_RUN:
                # confirmed once: the run's own state, when no task is left to run
                job.run_state = api.run(job.dag_id, job.run_id).get("state")
                out["requests"] += 1
            elif live:
                job.run_state = "running"
        except PlatformError as exc:  # a slow or failed poll: the last states stay drawn, the page polls again
            out.update(error=exc.one_line(), jobs=job.jobs, live=True)
            return out
        over = job.run_state in FINAL_RUN
        jobs = summarize(tis)
        for row in jobs.values():
            row["why"] = why_not_run(row["state"], over)
        job.jobs = jobs
        out.update(jobs=jobs, run_state=job.run_state, live=not over,
                   stage="done" if over and job.stage == "running" else job.stage)
        return out

    def log(self, file: str, task_id: str, try_number: int, map_index: int = -1) -> dict:
        """One try's log of a job (of one map index of a mapped job)."""
        job = self.jobs.get(file)
        if job is None or job.run_id is None:
            return {"log": "", "error": "no run of this pipeline yet"}
        api = self.api()
        if api is None:
            return {"log": "", "error": "the local stack is not up"}
        try:
            return {"log": api.task_log(job.dag_id, job.run_id, task_id, max(try_number, 1),
                                        *((map_index,) if map_index >= 0 else ()))}
        except PlatformError as exc:
            return {"log": "", "error": exc.one_line()}


__all__ = ["RunJob", "Runner", "summarize", "why_not_run"]
