"""One function per CLI command: (root, args) -> exit code."""

from .build import build
from .lock import lock, lock_check
from .schema import schema

__all__ = ["build", "lock", "lock_check", "schema"]
