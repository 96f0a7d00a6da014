"""The two questions deploy and gc ask a running Airflow 3.3 instance (REST API /api/v2), both optional.

- Refresh now: Airflow 3.3.2 has no endpoint that refreshes a bundle, but a priority parse request
  (PUT /parseDagFile/{file_token}) makes the DAG processor refresh that file's bundle on its next loop,
  ignoring the bundle's refresh_interval (DagFileProcessorManager._queue_requested_files_for_parsing ->
  request_bundle_refresh). Any DAG of the bundle gives a file token.
- Versions in use: the bundle_version of every queued or running DAG run, which make gc keeps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import AirflowAPIError


@dataclass
class InstanceAPI:
    base_url: str
    token: str | None = None
    timeout: float = 10.0

    @classmethod
    def for_url(cls, url: str) -> InstanceAPI:
        return cls(url.rstrip("/"), os.environ.get("AIRFLOW_API_TOKEN") or None)

    def _get(self, path: str, **params):
        return self._call("GET", path, params=params)

    def _call(self, method: str, path: str, **kw):
        import requests

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            r = requests.request(method, f"{self.base_url}/api/v2{path}", headers=headers, timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            raise AirflowAPIError(f"the Airflow API at {self.base_url} is not reachable ({type(exc).__name__})",
                                  "check managed.api_url in the environment file") from None
        if r.status_code in (401, 403):
            raise AirflowAPIError(f"the Airflow API at {self.base_url} refused the request ({r.status_code})",
                                  "set AIRFLOW_API_TOKEN to a token of a user who may read DAGs and runs")
        if r.status_code >= 400:
            raise AirflowAPIError(f"{method} {path} at {self.base_url} answered {r.status_code}: {r.text[:200]}")
        return r.json() if r.content else None

    def request_refresh(self, bundle_name: str) -> str | None:
        """Ask the DAG processor to refresh `bundle_name` now; returns the DAG whose file token was used,
        None when Airflow knows no DAG of that bundle yet (then the refresh interval applies)."""
        dags = (self._get("/dags", bundle_name=bundle_name, limit=1) or {}).get("dags", [])
        if not dags:
            return None
        self._call("PUT", f"/parseDagFile/{dags[0]['file_token']}")
        return dags[0]["dag_id"]

    def versions_in_use(self) -> set[str]:
        used: set[str] = set()
        offset = 0
        while True:
            page = self._get("/dags/~/dagRuns", state=["queued", "running"], limit=100, offset=offset) or {}
            runs = page.get("dag_runs", [])
            used.update(r["bundle_version"] for r in runs if r.get("bundle_version"))
            offset += len(runs)
            if not runs or offset >= page.get("total_entries", 0):
                return used
