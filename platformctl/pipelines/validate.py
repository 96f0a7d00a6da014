"""Validate one pipeline file: every problem with file, line and field, before anything is rendered.

All problems in one pass: the file is validated part by part (dag, defaults, each job), and the
semantic checks (schedule, flavors, images, dependencies, cycles, mapping, groups) run on every part
that parsed, so a typo'd key, a wrong flavor and a cycle are reported together.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

from ml_platform.spec import image_problem
from pydantic import BaseModel, ValidationError

from ..errors import Problem
from .loader import LoadError, Loaded, load_yaml
from .migrations import VersionError, read_version
from .model import (ID_RE, MODELS, PARTS, PRESETS, AssetAllOf, AssetAnyOf, AssetSchedule, MapOutput, PipelineV1,
                    PipelineV2)

# Tags of the discriminated unions in model.py: they appear in pydantic's error locations, not in the file.
_UNION_TAGS = {"cron", "assets", "any", "all", "name", "items", "output"}
_MOVED_IN_V2 = {("dag", "retries"): "moved to defaults.retries in version 2 (make migrate does it)"}


@dataclass
class Checked:
    file: str
    sha256: str
    pipeline: PipelineV1 | PipelineV2 | None = None
    source_version: int | None = None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    produces: list[str] = field(default_factory=list)  # assets this pipeline's jobs update
    consumes: list[tuple[str, int | None]] = field(default_factory=list)  # assets its schedule waits for
    # what the instance must have (#35; checked against every environment by platformctl.instance.check)
    job_settings: list[JobSettings] = field(default_factory=list)
    dag_connections: list[tuple[str, str, int | None]] = field(default_factory=list)  # (conn id, field, line)


@dataclass(frozen=True)
class JobSettings:
    """One job's pool and connections as written: its effective flavor, the pool it names itself (job or
    defaults; None: its flavor's), and each connection of secrets_from_connections, with lines."""

    job: str
    flavor: str | None
    flavor_line: int | None
    pool: str | None
    pool_field: str | None
    pool_line: int | None
    connections: tuple[tuple[str, str, int | None], ...] = ()  # (conn id, field, line)


def _model_at(version: int, loc: tuple) -> type[BaseModel] | None:
    """The model whose fields are valid at loc (for did-you-mean)."""
    parts = PARTS[version]
    if len(loc) == 0:
        return MODELS[version]
    if loc == ("dag",):
        return parts["dag"]
    if loc == ("defaults",):
        return parts["defaults"]
    if loc[0] == "jobs" and len(loc) == 2:
        return parts["job"]
    if version >= 2 and loc[0] == "jobs" and len(loc) == 3 and loc[2] == "map":
        from .model import Map

        return Map
    if version >= 2 and loc[:1] == ("dag",) and len(loc) == 3 and loc[1] == "params":
        from .model import Param

        return Param
    if version >= 2 and loc[:2] == ("dag", "notify"):
        from .model import Notifier, Notify

        return Notify if len(loc) == 2 else Notifier
    return None


def _clean_loc(data: Any, loc: tuple) -> tuple:
    """Drop the union tags from a pydantic location, keeping the path as written in the file."""
    out = []
    node = data
    for seg in loc:
        if isinstance(node, dict) and seg in node:
            node = node[seg]
        elif isinstance(node, list) and isinstance(seg, int) and seg < len(node):
            node = node[seg]
        elif seg in _UNION_TAGS:
            continue
        else:
            node = None
        out.append("as" if seg == "as_" else seg)
    return tuple(out)


def _field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _pydantic_problems(file: str, loaded: Loaded, exc: ValidationError, prefix: tuple, version: int) -> list[Problem]:
    out = []
    seen = set()
    for err in exc.errors():
        loc = prefix + _clean_loc(_get(loaded.data, prefix), tuple(err["loc"]))
        field_name = ".".join(str(p) for p in loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            model = _model_at(version, loc[:-1])
            known = _field_names(model) if model else []
            moved = _MOVED_IN_V2.get(loc) if version >= 2 else None
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            msg = "is not a known key" + (f" ({moved})" if moved else f" (did you mean '{close[0]}'?)" if close else
                                          f" (known: {', '.join(known)})" if known else "")
        elif err["type"] == "missing":
            msg = "is required"
        elif err["type"] == "string_pattern_mismatch":
            msg = f"{err.get('input')!r} does not match {err['ctx']['pattern']}"
        elif err["type"] == "literal_error":
            msg = f"{err.get('input')!r}: {msg.lower()}"
        key = (field_name, msg)
        if key not in seen:
            seen.add(key)
            out.append(Problem(file, loaded.line(loc), field_name, msg))
    return out


def _get(data: Any, path: tuple) -> Any:
    for seg in path:
        if isinstance(data, dict):
            data = data.get(seg)
        else:
            return None
    return data


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


def schedule_assets(schedule: Any, path: tuple = ("dag", "schedule")) -> list[tuple[str, tuple]]:
    """Every asset name in an asset schedule, with its path in the file."""
    if isinstance(schedule, AssetSchedule):
        items, key = schedule.assets, "assets"
    elif isinstance(schedule, AssetAnyOf):
        items, key = schedule.any, "any"
    elif isinstance(schedule, AssetAllOf):
        items, key = schedule.all, "all"
    else:
        return []
    out = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            out.append((item, path + (key, i)))
        else:
            out.extend(schedule_assets(item, path + (key, i)))
    return out


def _check_asset(name: str) -> str | None:
    scheme = name.split("://", 1)[0].lower() if "://" in name else ""
    if scheme == "airflow":
        return f"'{name}': the asset scheme 'airflow' is reserved by Airflow"
    if name in ("self", "context"):
        return f"'{name}' is reserved by Airflow (choose another asset name)"
    return None


@dataclass
class _Parts:
    """What parsed: each part is None when it did not (its problems are already listed)."""

    version: int
    dag: Any = None
    defaults: Any = None
    defaults_ok: bool = False
    jobs: dict[str, Any] = field(default_factory=dict)
    raw_jobs: dict[str, Any] = field(default_factory=dict)


def _validate_parts(file: str, loaded: Loaded, data: dict, version: int, out: list[Problem]) -> _Parts:
    parts = _Parts(version)
    model = MODELS[version]
    known = _field_names(model)
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            out.append(Problem(file, loaded.line((key,)), str(key), "is not a known key"
                               + (f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(known)})")))
    kinds = PARTS[version]

    def one(model_: type[BaseModel], value: Any, prefix: tuple):
        try:
            return model_.model_validate(value)
        except ValidationError as exc:
            out.extend(_pydantic_problems(file, loaded, exc, prefix, version))
            return None

    if "dag" not in data:
        out.append(Problem(file, 1, "dag", "is required"))
    else:
        parts.dag = one(kinds["dag"], data["dag"], ("dag",))
    parts.defaults = one(kinds["defaults"], data.get("defaults") or {}, ("defaults",))
    parts.defaults_ok = parts.defaults is not None
    if parts.defaults is None:
        parts.defaults = kinds["defaults"]()
    jobs = data.get("jobs")
    if not isinstance(jobs, dict) or not jobs:
        out.append(Problem(file, loaded.line(("jobs",)) or 1, "jobs",
                           "is required: a mapping of job names to jobs, at least one" if jobs is None else
                           "must be a mapping of job names to jobs, at least one"))
    else:
        # YAML reads yes/no/on/off/true/false and numbers as other than text: their written form, in order
        written = iter(sorted((line, key[1]) for key, line in loaded.lines.items()
                              if len(key) == 2 and key[0] == "jobs" and key[1] not in jobs))
        for name, raw in jobs.items():
            if not isinstance(name, str):
                line, text = next(written, (loaded.line(("jobs",)), str(name)))
                out.append(Problem(file, line, f"jobs.{text}",
                                   f"job name {text} is read as {type(name).__name__} {name!r}, not text: "
                                   f"quote it ('{text}') or rename it"))
                continue
            parts.raw_jobs[name] = raw
            job = one(kinds["job"], raw if raw is not None else {}, ("jobs", name))
            if job is not None:
                parts.jobs[name] = job
    return parts


def _raw_deps(raw: Any) -> list[str]:
    if not isinstance(raw, dict):
        return []
    deps = raw.get("depends_on")
    deps = [d for d in deps if isinstance(d, str)] if isinstance(deps, list) else []
    m = raw.get("map")
    if isinstance(m, dict) and isinstance(m.get("over"), dict) and isinstance(m["over"].get("output"), str):
        if m["over"]["output"] not in deps:
            deps.append(m["over"]["output"])
    return deps


def _semantic(file: str, loaded: Loaded, parts: _Parts, flavors: list[str], result: Checked) -> list[Problem]:
    out: list[Problem] = []
    line = loaded.line
    d = parts.defaults
    names = list(parts.raw_jobs)
    if parts.dag is not None:
        _record_dag_connections(result, line, parts.dag)
        if isinstance(parts.dag.schedule, str) or parts.dag.schedule is None:
            msg = _check_schedule(parts.dag.schedule)
            if msg:
                out.append(Problem(file, line(("dag", "schedule")), "dag.schedule", msg))
        for name, path in schedule_assets(getattr(parts.dag, "schedule", None)):
            msg = _check_asset(name)
            if msg:
                out.append(Problem(file, line(path), "dag.schedule", msg))
            result.consumes.append((name, line(path)))
        end = getattr(parts.dag, "end_date", None)
        if end is not None and end < parts.dag.start_date:
            out.append(Problem(file, line(("dag", "end_date")), "dag.end_date",
                               f"{end} is before start_date {parts.dag.start_date}"))
    groups = {j.group for j in parts.jobs.values() if getattr(j, "group", None)}
    for name, job in parts.jobs.items():
        base = ("jobs", name)
        if not ID_RE.match(name):
            out.append(Problem(file, line(base), f"jobs.{name}", "is not a valid task id (letters, digits, _ . -)"))
        if name in groups:
            out.append(Problem(file, line(base), f"jobs.{name}", "has the name of a group: rename the job or the "
                                                                 "group (they share the graph's namespace)"))
        image = job.docker_image or d.docker_image
        if image or parts.defaults_ok:
            msg = _check_image(image)
            if msg:
                key = "docker_image" if job.docker_image else None
                where = base + (key,) if key else ("defaults", "docker_image") if d.docker_image else base
                out.append(Problem(file, line(where), f"jobs.{name}.docker_image", msg))
        flavor = job.resource_flavor or d.resource_flavor
        if not flavor:
            if parts.defaults_ok:
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
            if dep not in parts.raw_jobs:
                close = difflib.get_close_matches(dep, names, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                out.append(Problem(file, line(base + ("depends_on", i)), f"jobs.{name}.depends_on",
                                   f"'{dep}' is not a job in this pipeline{hint}"))
        m = getattr(job, "map", None)
        if m is not None:
            if isinstance(m.over, MapOutput):
                src = m.over.output
                where = line(base + ("map", "over", "output"))
                if src not in parts.raw_jobs:
                    close = difflib.get_close_matches(src, names, n=1)
                    out.append(Problem(file, where, f"jobs.{name}.map.over.output", f"'{src}' is not a job in this "
                                       "pipeline" + (f" (did you mean '{close[0]}'?)" if close else "")))
                elif src == name:
                    out.append(Problem(file, where, f"jobs.{name}.map.over.output", "a job cannot map over itself"))
                elif getattr(parts.jobs.get(src), "map", None) is not None:
                    out.append(Problem(file, where, f"jobs.{name}.map.over.output",
                                       f"'{src}' is itself mapped: its output is a list of lists (map over a "
                                       "job that is not mapped)"))
            elif not m.over:
                out.append(Problem(file, line(base + ("map", "over")), f"jobs.{name}.map.over",
                                   "is empty: give at least one item"))
            elif len({repr(v) for v in m.over}) != len(m.over):
                out.append(Problem(file, line(base + ("map", "over")), f"jobs.{name}.map.over",
                                   "has duplicate items"))
            if m.as_ in job.env or m.as_ in d.env:
                out.append(Problem(file, line(base + ("map",)), f"jobs.{name}.map.as",
                                   f"'{m.as_}' is also set in env: the item would replace it (choose another name)"))
        _record_settings(result, line, d, name, job, flavor)
        for i, asset in enumerate(getattr(job, "outlets", []) or []):
            msg = _check_asset(asset)
            if msg:
                out.append(Problem(file, line(base + ("outlets", i)), f"jobs.{name}.outlets", msg))
            result.produces.append(asset)
    cycle = _find_cycle({n: _raw_deps(raw) for n, raw in parts.raw_jobs.items()})
    if cycle:
        out.append(Problem(file, line(("jobs", cycle[0], "depends_on")), "jobs",
                           "have a dependency cycle: " + " -> ".join(cycle)))
    return out


def _record_settings(result: Checked, line, d, name: str, job, flavor: str | None) -> None:
    base = ("jobs", name)
    f_where = base + ("resource_flavor",) if job.resource_flavor else ("defaults", "resource_flavor")
    p_where = base + ("pool",) if job.pool else ("defaults", "pool") if d.pool else None
    conns = []
    own = getattr(job, "secrets_from_connections", {}) or {}
    for var, conn in {**(getattr(d, "secrets_from_connections", {}) or {}), **own}.items():
        where = base + ("secrets_from_connections", var) if var in own else ("defaults", "secrets_from_connections",
                                                                             var)
        conns.append((conn, ".".join(where), line(where)))
    result.job_settings.append(JobSettings(name, flavor, line(f_where) or line(base), job.pool or d.pool,
                                           ".".join(p_where) if p_where else None,
                                           line(p_where) if p_where else None, tuple(conns)))


def _record_dag_connections(result: Checked, line, dag) -> None:
    notify = getattr(dag, "notify", None)
    for when in ("on_failure", "on_success"):
        n = getattr(notify, when, None) if notify is not None else None
        if n is not None:
            loc = ("dag", "notify", when, "connection")
            result.dag_connections.append((n.connection, ".".join(loc), line(loc)))


def check(file: str, raw: bytes, flavors: list[str], load: Callable[[bytes], Loaded] = load_yaml) -> Checked:
    """Every problem of one pipeline file (its bytes), with lines; `load` may be a memoising load_yaml."""
    result = Checked(file, hashlib.sha256(raw).hexdigest())
    try:
        loaded = load(raw)
    except LoadError as exc:
        result.problems.append(Problem(file, exc.line, "", str(exc)))
        return result
    if not isinstance(loaded.data, dict):
        result.problems.append(Problem(file, 1, "", "must be a mapping with dag: and jobs:"))
        return result
    try:
        version = result.source_version = read_version(loaded.data)
    except VersionError as exc:
        result.problems.append(Problem(file, loaded.line(("version",)), "version", str(exc)))
        return result
    problems: list[Problem] = []
    parts = _validate_parts(file, loaded, loaded.data, version, problems)
    problems.extend(_semantic(file, loaded, parts, flavors, result))
    result.problems.extend(sorted(problems, key=lambda p: (p.line or 0)))
    if not result.problems:
        result.pipeline = MODELS[version].model_validate(loaded.data)  # type: ignore[assignment]
    return result
