"""A small client for the Airflow 3 REST API (/api/v2) of the local stack.

The local stack runs the simple auth manager with every user an admin, so no token is needed; a
token endpoint is tried when the API answers 401 (e.g. a stack started with real auth).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from ..wait import wait_until
from ..errors import ApiTimeout, StackError


@dataclass
class AirflowAPI:
    base_url: str
    timeout: float = 30.0

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.session = requests.Session()
        # reads (GET) are retried on a timeout or a 502/503/504 with backoff: a busy machine's API server
        # can miss one read; writes (trigger, unpause) are never repeated
        retry = Retry(total=3, connect=0, read=3, status=3, backoff_factor=0.5, status_forcelist=(502, 503, 504),
                      allowed_methods=frozenset({"GET"}), raise_on_status=False)
        self.session.mount("http://", HTTPAdapter(max_retries=retry))

    def _req(self, method: str, path: str, **kw) -> requests.Response:
        url = f"{self.base_url}/api/v2{path}"
        try:
            r = self.session.request(method, url, timeout=self.timeout, **kw)
        except requests.ConnectionError as exc:
            if isinstance(getattr(exc.args[0] if exc.args else None, "reason", None), ReadTimeoutError):
                raise self._timed_out(method, path) from None
            raise StackError(f"Airflow API at {self.base_url} is not reachable ({type(exc).__name__})",
                             "start the stack with make up") from None
        except requests.Timeout:
            raise self._timed_out(method, path) from None
        return r

    def _timed_out(self, method: str, path: str) -> ApiTimeout:
        return ApiTimeout(f"Airflow API at {self.base_url} did not answer {method} {path} within {self.timeout:g} s",
                          "the machine may be overloaded: see `docker stats`, then retry")

    def _json(self, method: str, path: str, ok=(200,), **kw) -> Any:
        r = self._req(method, path, **kw)
        if r.status_code not in ok:
            raise StackError(f"{method} {path} answered {r.status_code}: {r.text[:300]}")
        return r.json()

    # --- health -------------------------------------------------------------------------------
    def healthy(self) -> bool:
        try:
            r = self.session.get(f"{self.base_url}/api/v2/monitor/health", timeout=3)
        except requests.RequestException:
            return False
        if r.status_code != 200:
            return False
        body = r.json()
        return all(body.get(c, {}).get("status") == "healthy" for c in ("metadatabase", "scheduler"))

    def health(self) -> dict:
        return self._json("GET", "/monitor/health")

    # --- DAGs -------------------------------------------------------------------------------------
    def dag(self, dag_id: str) -> dict | None:
        r = self._req("GET", f"/dags/{dag_id}")
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise StackError(f"GET /dags/{dag_id} answered {r.status_code}: {r.text[:300]}")
        return r.json()

    def import_errors(self) -> list[dict]:
        return self._json("GET", "/importErrors").get("import_errors", [])

    def wait_for_dag(self, dag_id: str, timeout: float = 120, poll: float = 2,
                     parsed_after: float | None = None) -> dict:
        """The DAG once Airflow has it; with parsed_after (a file's mtime, epoch seconds), once Airflow parsed
        it after that (asking the DAG processor to parse the file now instead of at its next interval)."""
        asked, seen = [], []

        def parsed() -> dict | None:
            d = self.dag(dag_id)
            if d is not None and (parsed_after is None or _epoch(d.get("last_parsed_time")) >= parsed_after):
                return d
            if d is not None:
                seen.append(True)
                if not asked and d.get("file_token"):
                    self._req("PUT", f"/parseDagFile/{d['file_token']}")
                    asked.append(True)
            errs = [e for e in self.import_errors() if dag_id in (e.get("filename") or "")
                    and (parsed_after is None or _epoch(e.get("timestamp")) >= parsed_after)]
            if errs:
                first = errs[0]
                msg = (first.get("stack_trace") or "").strip().splitlines()
                raise StackError(f"DAG {dag_id} failed to import in Airflow: {msg[-1] if msg else '?'}",
                                 f"fix pipelines/{dag_id}.yaml, run make render", where=first.get("filename"))
            return None

        def timeout_error() -> StackError:
            if seen:
                return StackError(f"DAG {dag_id} was not parsed again within {timeout:.0f}s of its change",
                                  "see the dag-processor logs (make up starts one)")
            return StackError(f"DAG {dag_id} did not appear in Airflow within {timeout:.0f}s",
                              "is dags/<name>.py rendered (make render)? see the dag-processor logs")

        return wait_until(parsed, timeout=timeout, poll=poll if parsed_after is None else min(poll, 0.5),
                          timeout_error=timeout_error)

    def unpause(self, dag_id: str) -> None:
        self._json("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    # --- runs -------------------------------------------------------------------------------------
    def trigger(self, dag_id: str, conf: dict | None = None, note: str | None = None) -> dict:
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}}
        if note:
            body["note"] = note
        return self._json("POST", f"/dags/{dag_id}/dagRuns", json=body)

    def run(self, dag_id: str, run_id: str) -> dict:
        return self._json("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str, page: int = 1000) -> list[dict]:
        """Every task instance of the run (mapped ones one per index). The API server caps a page at its
        `[api] maximum_page_limit` (100 by default; the local stack sets 1000), whatever limit is asked:
        the next pages are read by offset until `total_entries` are in."""
        out: list[dict] = []
        while True:
            body = self._json("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                              params={"limit": page, "offset": len(out), "order_by": "id"})
            got = body.get("task_instances", [])
            out += got
            if not got or len(out) >= int(body.get("total_entries") or 0):
                return out

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        params = {"full_content": "true", **({"map_index": str(map_index)} if map_index >= 0 else {})}
        r = self._req("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
                      params=params, headers={"Accept": "application/json"})
        if r.status_code != 200:
            return f"(log not available: {r.status_code})"
        return log_text(r.json().get("content"))


def log_text(content: Any) -> str:
    """Airflow 3 returns structured log lines ({"event": ..., "timestamp": ...}) or plain text."""
    if isinstance(content, str):
        return content
    lines = []
    for item in content or []:
        if isinstance(item, dict):
            ev = item.get("event", "")
            if item.get("sources"):  # the "::group::Log message source details" header
                continue
            lines.append(str(ev))
            for err in item.get("error_detail") or []:  # the exception behind "Task failed with exception"
                if isinstance(err, dict) and err.get("exc_type"):
                    lines.append(f"{err['exc_type']}: {err.get('exc_value', '')}")
        else:
            lines.append(str(item))
    return "\n".join(lines)


def _epoch(iso: str | None) -> float:
    """An API timestamp (ISO 8601 with offset) as epoch seconds; 0 when absent."""
    if not iso:
        return 0.0
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
