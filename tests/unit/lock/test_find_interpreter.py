"""The resolvers' small helpers."""

from __future__ import annotations

import sys

from platformctl.lock.resolvers import find_interpreter


def test_find_interpreter_asks_each_candidate_its_version():
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert find_interpreter(here) is not None  # the running interpreter answers its own X.Y
    assert find_interpreter("2.1") is None
