"""One polling loop: `wait_until(check, timeout=, poll=, timeout_error=)` for everything that waits on a
service (the engine after start, Airflow's health, a DAG being parsed, a run finishing)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T], *, timeout: float, poll: float,
               timeout_error: Callable[[], Exception] | None = None) -> T:
    """Call check() every `poll` seconds until it returns something truthy, and return that. check() may
    raise to stop at once. After `timeout` seconds: raise timeout_error(), or return the last falsy value
    when there is none."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            if timeout_error is not None:
                raise timeout_error()
            return result
        time.sleep(poll)
