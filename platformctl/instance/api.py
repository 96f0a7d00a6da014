"""The instance's REST API as the settings need it: pools (list, create, patch, delete) and whether a
connection exists (GET /api/v2/connections/{id}: its id and type are read, never its secrets).

Credentials: a bearer token from AIRFLOW_API_TOKEN (CI secret or the shell), the URL from the environment's
managed.api_url (make deploy/plan also take --airflow-url). 401/403 name the setting to fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import quote

from ..errors import InstanceAuthError, InstanceUnreachable, InstanceSettingsError

TOKEN_VAR = "AIRFLOW_API_TOKEN"


@dataclass(frozen=True)
class LivePool:
    name: str
    slots: int
    description: str
    include_deferred: bool
    running: int = 0
    queued: int = 0
    scheduled: int = 0
    deferred: int = 0

    @property
    def in_use(self) -> int:
        return self.running + self.queued + self.scheduled + self.deferred


@dataclass
class SettingsAPI:
    base_url: str
    token: str | None = None
    timeout: float = 30.0
    setting: str = "managed.api_url"  # where the URL came from, named when it is unreachable

    @classmethod
    def for_url(cls, url: str, setting: str = "managed.api_url") -> SettingsAPI:
        return cls(url.rstrip("/"), os.environ.get(TOKEN_VAR) or None, setting=setting)

    def _call(self, method: str, path: str, ok: tuple[int, ...] = (200,), **kw):
        import requests

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            try:
                r = requests.request(method, f"{self.base_url}/api/v2{path}", headers=headers,
                                     timeout=self.timeout, **kw)
            except requests.Timeout:
                if method != "GET":  # a write is never repeated: it may have been applied
                    raise
                r = requests.request(method, f"{self.base_url}/api/v2{path}", headers=headers,
                                     timeout=self.timeout, **kw)  # a busy API server: one more read
        except requests.RequestException as exc:
            raise InstanceUnreachable(f"the Airflow API at {self.base_url} is not reachable ({type(exc).__name__}) "
                                      f"during {method} {path}", f"check {self.setting} and that the instance is "
                                      "up") from None
        if r.status_code in (401, 403):
            what = "has no valid token" if r.status_code == 401 else "may not do this"
            raise InstanceAuthError(
                f"the Airflow API at {self.base_url} refused {method} {path} ({r.status_code}: the caller {what})",
                f"set {TOKEN_VAR} to a token of a user who may edit pools and read connections "
                f"({'unset' if not self.token else 'the one set was refused'})")
        if r.status_code not in ok:
            detail = r.text[:300].replace("\n", " ")
            raise InstanceSettingsError(f"{method} {path} at {self.base_url} answered {r.status_code}: {detail}")
        return r

    # --- pools ------------------------------------------------------------------------------------
    def pools(self) -> dict[str, LivePool]:
        out: dict[str, LivePool] = {}
        offset = 0
        while True:
            page = self._call("GET", "/pools", params={"limit": 100, "offset": offset}).json()
            for p in page.get("pools", []):
                out[p["name"]] = LivePool(p["name"], p["slots"], p.get("description") or "",
                                          bool(p.get("include_deferred")), p.get("running_slots", 0),
                                          p.get("queued_slots", 0), p.get("scheduled_slots", 0),
                                          p.get("deferred_slots", 0))
            offset += len(page.get("pools", []))
            if not page.get("pools") or offset >= page.get("total_entries", 0):
                return out

    def pool(self, name: str) -> LivePool | None:
        r = self._call("GET", f"/pools/{quote(name, safe='')}", ok=(200, 404))
        if r.status_code == 404:
            return None
        p = r.json()
        return LivePool(p["name"], p["slots"], p.get("description") or "", bool(p.get("include_deferred")),
                        p.get("running_slots", 0), p.get("queued_slots", 0), p.get("scheduled_slots", 0),
                        p.get("deferred_slots", 0))

    def create_pool(self, name: str, slots: int, description: str, include_deferred: bool) -> None:
        self._call("POST", "/pools", ok=(200, 201), json={"name": name, "slots": slots, "description": description,
                                                           "include_deferred": include_deferred})

    def update_pool(self, name: str, slots: int, description: str, include_deferred: bool) -> None:
        if name == "default_pool":  # Airflow lets only these two change on it
            self._call("PATCH", f"/pools/{name}", params={"update_mask": ["slots", "include_deferred"]},
                       json={"slots": slots, "include_deferred": include_deferred})
            return
        self._call("PATCH", f"/pools/{quote(name, safe='')}", json={
            "name": name, "slots": slots, "description": description, "include_deferred": include_deferred})

    def delete_pool(self, name: str) -> None:
        self._call("DELETE", f"/pools/{quote(name, safe='')}", ok=(200, 204, 404))

    # --- connections: existence and type only -----------------------------------------------------
    def connection_type(self, conn_id: str) -> str | None:
        """The connection's type, or None when the instance has no such connection (in its database)."""
        r = self._call("GET", f"/connections/{quote(conn_id, safe='')}", ok=(200, 404))
        if r.status_code == 404:
            return None
        return r.json().get("conn_type") or ""
