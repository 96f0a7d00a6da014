from __future__ import annotations

from ..errors import PlatformError


class StackError(PlatformError):
    """The local stack cannot be started, reached or stopped."""

    exit_code = 30


class RunFailed(PlatformError):
    """A pipeline run ended in a state other than success."""

    exit_code = 31
