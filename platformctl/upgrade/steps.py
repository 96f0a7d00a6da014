"""The rehearsal's step runner: each step a function, run once its prerequisites passed, timed, one progress
line each; a failed step stops the steps that need it, which are reported as not run."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import PlatformError
from ..output import say

OK, FAILED, FINDINGS, NOT_RUN = "ok", "failed", "findings", "not run"


@dataclass
class StepResult:
    name: str
    title: str
    status: str = NOT_RUN
    seconds: float = 0.0
    summary: str = ""
    needs: tuple[str, ...] = ()


@dataclass
class Runner:
    steps: list[StepResult] = field(default_factory=list)
    echo: Callable[..., None] = say

    def get(self, name: str) -> StepResult | None:
        return next((s for s in self.steps if s.name == name), None)

    def passed(self, name: str) -> bool:
        s = self.get(name)
        return s is not None and s.status in (OK, FINDINGS)

    def run(self, name: str, title: str, fn: Callable[[], tuple[str, str]], needs: tuple[str, ...] = ()) -> bool:
        """fn returns (status OK or FINDINGS, one-line summary); a raised error is a FAILED step."""
        step = StepResult(name, title, needs=needs)
        self.steps.append(step)
        missing = [n for n in needs if not self.passed(n)]
        if missing:
            step.summary = f"needs {', '.join(missing)}, which did not pass"
            self.echo(f"  {name:<17} {'not run':<8}      -  {step.summary}")
            return False
        t0 = time.perf_counter()
        try:
            step.status, step.summary = fn()
        except PlatformError as exc:
            step.status, step.summary = FAILED, exc.one_line()
        except Exception as exc:  # noqa: BLE001 - a step's own bug is reported as that step's failure
            step.status = FAILED
            step.summary = f"{type(exc).__name__}: {exc} ({traceback.format_exc().strip().splitlines()[-3].strip()})"
        step.seconds = round(time.perf_counter() - t0, 1)
        self.echo(f"  {name:<17} {step.status:<8} {step.seconds:6.1f}s  {step.summary}")
        return step.status in (OK, FINDINGS)
