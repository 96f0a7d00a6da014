"""One function per CLI command: (root, args) -> exit code."""

from .lock import lock, lock_check
from .schema import schema

__all__ = ["lock", "lock_check", "schema"]
