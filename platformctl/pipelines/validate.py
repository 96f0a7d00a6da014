"""Validate one pipeline file: every problem with file, line and field, before anything is rendered."""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field

from ml_platform.spec import image_problem
from pydantic import BaseModel, ValidationError

from .errors import Problem
from .loader import LoadError, Loaded, load_yaml
from .migrations import VersionError, migrate
from .model import ID_RE, PRESETS, Defaults, Job, Pipeline


@dataclass
class Checked:
    file: str
    sha256: str
    pipeline: Pipeline | None = None
    source_version: int | None = None
    problems: list[Problem] = field(default_factory=list)


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The model whose fields are valid at loc (for did-you-mean)."""
    if len(loc) == 0:
        return Pipeline
    if loc[0] == "dag" and len(loc) == 1:
        return Pipeline.model_fields["dag"].annotation  # type: ignore[return-value]
    if loc[0] == "defaults" and len(loc) == 1:
        return Defaults
    if loc[0] == "jobs" and len(loc) == 2:
        return Job
    return None


def _pydantic_problems(file: str, loaded: Loaded, exc: ValidationError) -> list[Problem]:
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        field_name = ".".join(str(p) for p in loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            model = _model_at(loc[:-1])
            known = list(model.model_fields) if model else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            msg = "is not a known key" + (f" (did you mean '{close[0]}'?)" if close else
                                          f" (known: {', '.join(known)})" if known else "")
        elif err["type"] == "missing":
            msg = "is required"
        out.append(Problem(file, loaded.line(loc), field_name, msg))
    return out


def _check_image(image: str | None) -> str | None:
    if not image:
        return "is required (set it on the job or in defaults)"
    return image_problem(image)  # the rule JobOperator applies when the DAG is parsed


def _check_schedule(schedule: str | None) -> str | None:
    if schedule is None or schedule in PRESETS:
        return None
    if schedule.startswith("@"):
        return f"'{schedule}' is not a preset (one of: {', '.join(PRESETS)})"
    try:
        from croniter import croniter
    except ImportError:  # pragma: no cover - croniter comes with the dev lock
        ok = len(schedule.split()) == 5
    else:
        ok = croniter.is_valid(schedule) and len(schedule.split()) == 5
    return None if ok else f"'{schedule}' is not a valid cron expression (5 fields, e.g. '0 3 * * *') or preset"


def _find_cycle(deps: dict[str, list[str]]) -> list[str] | None:
    """The first dependency cycle met by a depth-first walk from the jobs in name order, or None.
    Iterative (an explicit stack), so a chain of any length cannot exhaust Python's recursion limit."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(deps):
        if start in state:
            continue
        path, pos, todo = [start], {start: 0}, [iter(deps.get(start, []))]
        state[start] = 1
        while todo:
            d = next(todo[-1], None)
            if d is None:
                state[path.pop()] = 2
                todo.pop()
                continue
            if state.get(d) == 1:
                return path[pos[d]:] + [d]
            if d in deps and d not in state:
                state[d] = 1
                pos[d] = len(path)
                path.append(d)
                todo.append(iter(deps[d]))
    return None


def _semantic(file: str, loaded: Loaded, p: Pipeline, flavors: list[str]) -> list[Problem]:
    out: list[Problem] = []
    line = loaded.line
    msg = _check_schedule(p.dag.schedule)
    if msg:
        out.append(Problem(file, line(("dag", "schedule")), "dag.schedule", msg))
    for name, job in p.jobs.items():
        base = ("jobs", name)
        if not ID_RE.match(name):
            out.append(Problem(file, line(base), f"jobs.{name}", "is not a valid task id (letters, digits, _ . -)"))
        image = job.docker_image or p.defaults.docker_image
        msg = _check_image(image)
        if msg:
            key = "docker_image" if job.docker_image else None
            where = base + (key,) if key else ("defaults", "docker_image") if p.defaults.docker_image else base
            out.append(Problem(file, line(where), f"jobs.{name}.docker_image", msg))
        flavor = job.resource_flavor or p.defaults.resource_flavor
        if not flavor:
            out.append(Problem(file, line(base), f"jobs.{name}.resource_flavor",
                               f"is required (set it on the job or in defaults; one of: {', '.join(flavors)})"))
        elif flavor not in flavors:
            close = difflib.get_close_matches(flavor, flavors, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            where = base + ("resource_flavor",) if job.resource_flavor else ("defaults", "resource_flavor")
            out.append(Problem(file, line(where), f"jobs.{name}.resource_flavor",
                               f"'{flavor}' is not in flavors.yaml ({hint}known: {', '.join(flavors)})"))
        if not job.command and not job.arguments:
            out.append(Problem(file, line(base), f"jobs.{name}.command", "is required (what the container runs)"))
        for i, dep in enumerate(job.depends_on):
            if dep not in p.jobs:
                close = difflib.get_close_matches(dep, list(p.jobs), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                out.append(Problem(file, line(base + ("depends_on", i)), f"jobs.{name}.depends_on",
                                   f"'{dep}' is not a job in this pipeline{hint}"))
    cycle = _find_cycle({n: j.depends_on for n, j in p.jobs.items()})
    if cycle:
        out.append(Problem(file, line(("jobs", cycle[0], "depends_on")), "jobs",
                           "have a dependency cycle: " + " -> ".join(cycle)))
    return out


def check(file: str, raw: bytes, flavors: list[str]) -> Checked:
    result = Checked(file, hashlib.sha256(raw).hexdigest())
    try:
        loaded = load_yaml(raw)
    except LoadError as exc:
        result.problems.append(Problem(file, exc.line, "", str(exc)))
        return result
    if not isinstance(loaded.data, dict):
        result.problems.append(Problem(file, 1, "", "must be a mapping with dag: and jobs:"))
        return result
    try:
        data, result.source_version = migrate(loaded.data)
    except VersionError as exc:
        result.problems.append(Problem(file, loaded.line(("version",)), "version", str(exc)))
        return result
    try:
        pipeline = Pipeline.model_validate(data)
    except ValidationError as exc:
        result.problems.extend(_pydantic_problems(file, loaded, exc))
        return result
    result.problems.extend(_semantic(file, loaded, pipeline, flavors))
    if not result.problems:
        result.pipeline = pipeline
    return result
