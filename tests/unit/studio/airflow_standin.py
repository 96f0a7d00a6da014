"""A stand-in for the few Airflow /api/v2 reads the studio's runs make (health, the last DAG run, a run, its
task-instance list, one task instance, a log), on 127.0.0.1, answering from data the caller sets. It pages
the task-instance list as the real API server does (at most `page_limit` per answer, 100 being Airflow's
default `[api] maximum_page_limit`, with `total_entries`) and counts every request it answers by kind.
Used by the studio's unit tests and by bench/studio.py for the 200-job draw with states (not for the
state-change latency or the request rate, which the bench measures against the real local stack)."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from tests.loopback_http import LoopbackServer

RUNS = re.compile(r"^/api/v2/dags/([^/]+)/dagRuns$")
RUN = re.compile(r"^/api/v2/dags/([^/]+)/dagRuns/([^/]+)$")
TIS = re.compile(r"^/api/v2/dags/([^/]+)/dagRuns/([^/]+)/taskInstances$")
TI = re.compile(r"^/api/v2/dags/([^/]+)/dagRuns/([^/]+)/taskInstances/([^/]+?)(?:/(-?\d+))?$")
LOG = re.compile(r"^/api/v2/dags/([^/]+)/dagRuns/([^/]+)/taskInstances/([^/]+)/logs/(\d+)$")


def ti(task: str, state: str | None, try_number: int = 1, duration: float | None = None, map_index: int = -1) -> dict:
    return {"task_id": task, "state": state, "try_number": try_number, "duration": duration, "map_index": map_index}


class StandinAirflow(LoopbackServer):
    """runs: dag_id -> [(run_id, run state, [task instance dicts])], newest last."""

    def __init__(self, page_limit: int = 100):
        self.page_limit = page_limit
        self.runs: dict[str, list[tuple[str, str, list[dict]]]] = {}
        self.requests: Counter = Counter()
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):
                parts = urlsplit(self.path)
                kind, body = outer.answer(parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()})
                with outer.lock:
                    outer.requests[kind] += 1
                data = json.dumps(body).encode()
                self.send_response(404 if kind == "unknown" else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        super().__init__(Handler, poll_interval=0.05)

    def _run(self, dag: str, run_id: str):
        return next((r for r in self.runs.get(dag, []) if r[0] == run_id), None)

    def answer(self, path: str, q: dict) -> tuple[str, dict]:
        if path == "/api/v2/monitor/health":
            return "health", {"metadatabase": {"status": "healthy"}, "scheduler": {"status": "healthy"}}
        if m := RUNS.match(path):
            runs = self.runs.get(m[1], [])
            return "dag_runs", {"dag_runs": [{"dag_run_id": r[0], "state": r[1]} for r in reversed(runs)][:1],
                                "total_entries": len(runs)}
        if m := RUN.match(path):
            r = self._run(m[1], m[2])
            return ("run", {"dag_run_id": r[0], "state": r[1]}) if r else ("unknown", {"detail": "no run"})
        if m := TIS.match(path):
            r = self._run(m[1], m[2])
            tis = r[2] if r else []
            limit = min(int(q.get("limit", 50)), self.page_limit)
            offset = int(q.get("offset", 0))
            return "task_instances", {"task_instances": tis[offset:offset + limit], "total_entries": len(tis)}
        if m := LOG.match(path):
            mi = int(q.get("map_index", -1))
            return "log", {"content": [{"event": f"log of {m[3]} map index {mi} try {m[4]}"}]}
        if m := TI.match(path):
            r = self._run(m[1], m[2])
            mi = int(m[4]) if m[4] is not None else -1
            hit = [t for t in (r[2] if r else []) if t["task_id"] == m[3] and t.get("map_index", -1) == mi]
            return ("task_instance", hit[0]) if hit else ("unknown", {"detail": "no task instance"})
        return "unknown", {"detail": f"not in the stand-in: {path}"}
