"""What the studio's HTTP layer and its API share, without the API's heavy imports."""

from __future__ import annotations

import re

FILE_RE = re.compile(r"^pipelines/([A-Za-z0-9_][A-Za-z0-9_.-]{0,120})\.ya?ml$")


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra):
        super().__init__(message)
        self.status = status
        self.extra = extra
