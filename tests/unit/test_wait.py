from __future__ import annotations

import pytest

from platformctl.wait import wait_until


def test_returns_the_first_truthy_result():
    calls = iter([None, 0, "done"])
    assert wait_until(lambda: next(calls), timeout=5, poll=0) == "done"


def test_timeout_raises_the_given_error_or_returns_the_last_value():
    with pytest.raises(TimeoutError, match="never"):
        wait_until(lambda: None, timeout=0, poll=0, timeout_error=lambda: TimeoutError("never"))
    assert wait_until(lambda: False, timeout=0, poll=0) is False


def test_a_check_that_raises_stops_at_once():
    def boom():
        raise ValueError("import error")
    with pytest.raises(ValueError):
        wait_until(boom, timeout=60, poll=10)
