from __future__ import annotations

from dataclasses import dataclass

from ..errors import PlatformError


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field + ' ' if self.field else ''}{self.message}"


class PipelineError(PlatformError):
    """One or more pipelines are invalid; every problem is listed, one per line."""

    exit_code = 11
    kind = "pipeline"

    def __init__(self, problems: list[Problem]):
        files = sorted({p.file for p in problems})
        super().__init__(f"{len(problems)} problem(s) in {len(files)} pipeline file(s): {', '.join(files)}",
                         "fix each line above, then run make render")
        self.problems = problems


class RenderCheckError(PlatformError):
    exit_code = 12
    kind = "render-check"
