"""A bundle store whose upload is cut off midway: deploy's failure tests, over a folder store and S3 alike."""

from __future__ import annotations

import threading
from typing import TypeVar

from platformctl.deploy.store import BundleStore, StoreError

S = TypeVar("S", bound=BundleStore)


def cut_off(store: S, after: int, fault: str = "connection lost") -> S:
    """`store` with its writes cut off: the first `after` puts go through, every later one raises
    StoreError(fault) (deploy uploads from several threads: the count is kept under a lock)."""
    put, lock, left = store.put, threading.Lock(), [after]

    def limited(key, data, metadata=None):
        with lock:
            if left[0] <= 0:
                raise StoreError(fault)
            left[0] -= 1
        put(key, data, metadata)

    store.put = limited
    return store
