"""make run starts the DAG version it rendered: it waits for a parse after the file's change, asking once."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from platformctl.stack.api import AirflowAPI, _epoch
from platformctl.errors import StackError

CHANGED = datetime(2026, 12, 3, 10, 0, 0, tzinfo=timezone.utc).timestamp()


def iso(offset: float) -> str:
    return datetime.fromtimestamp(CHANGED + offset, tz=timezone.utc).isoformat().replace("+00:00", "Z")


class Api(AirflowAPI):
    def __init__(self, parses: list[float]):
        super().__init__("http://127.0.0.1:1")
        self.parses, self.puts = parses, []

    def dag(self, dag_id):
        t = self.parses.pop(0) if len(self.parses) > 1 else self.parses[0]
        return {"dag_id": dag_id, "file_token": "tok", "last_parsed_time": iso(t)}

    def import_errors(self):
        return []

    def _req(self, method, path, **kw):
        self.puts.append((method, path))


def test_waits_for_a_parse_after_the_change_and_asks_for_it_once():
    api = Api([-30, -30, -30, 2])
    d = api.wait_for_dag("etl", poll=0, parsed_after=CHANGED)
    assert _epoch(d["last_parsed_time"]) >= CHANGED
    assert api.puts == [("PUT", "/parseDagFile/tok")]


def test_an_already_parsed_version_needs_no_request():
    api = Api([5])
    api.wait_for_dag("etl", poll=0, parsed_after=CHANGED)
    assert api.puts == []


def test_a_parse_that_never_comes_is_named():
    api = Api([-30])
    with pytest.raises(StackError, match="not parsed again"):
        api.wait_for_dag("etl", timeout=0, poll=0, parsed_after=CHANGED)
