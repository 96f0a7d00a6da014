"""A busy API server: reads are retried, and a server that never answers is one line, not a traceback."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from platformctl.stack.api import AirflowAPI
from platformctl.errors import StackError


@pytest.fixture
def silent_server():
    """Accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns, stop = [], threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                pass
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}", conns
    stop.set()
    t.join()
    for c in conns:
        c.close()
    srv.close()


def test_a_read_that_never_answers_is_retried_then_one_line(silent_server):
    url, conns = silent_server
    api = AirflowAPI(url, timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(StackError) as exc:
        api.dag("example_etl")
    assert "did not answer GET /dags/example_etl within 0.3 s" in exc.value.message
    assert "overloaded" in exc.value.hint
    assert len(conns) >= 4  # the first read and three retries
    assert time.monotonic() - t0 < 10


def test_a_write_is_never_repeated(silent_server):
    url, conns = silent_server
    with pytest.raises(StackError, match="did not answer POST"):
        AirflowAPI(url, timeout=0.3).trigger("example_etl")
    time.sleep(0.3)
    assert len(conns) == 1
