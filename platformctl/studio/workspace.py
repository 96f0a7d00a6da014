"""What the studio shows about a pipeline, from the same loader, validator and renderer as `make render`.

Pure functions of (project root, file name, text): the flavor catalog with the environments that allow
each flavor, the graph (jobs, edges, effective image and flavor), the validator's problems attached to
the job / field / edge they concern, per-environment flavor refusals, the rendered DAG and the totals
one run asks for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..environments import ENV_DIR, load_environment
from ..errors import PlatformError
from ..pipelines.loader import LoadError, load_text, load_yaml
from ..pipelines.project import PIPELINES, pipeline_files, template_path
from ..pipelines.render import job_views, render_one
from ..pipelines.validate import Checked, check

SCHEMA = "schemas/pipeline.schema.json"


@dataclass(frozen=True)
class Catalog:
    flavors: dict  # name -> {description, cpu, memory, gpu, limits..., allowed_in: [env]}
    environments: dict  # env name -> allowed flavor names, or None for every flavor
    schema: dict

    @property
    def names(self) -> list[str]:
        return sorted(self.flavors)


def load_catalog(root: Path) -> Catalog:
    from ml_platform.errors import PlatformConfigError
    from ml_platform.flavors import load_catalog as load_flavors

    from ..errors import ConfigError

    try:
        cat = load_flavors(root / "flavors.yaml")
    except PlatformConfigError as exc:
        raise ConfigError(str(exc), "fix flavors.yaml first") from None
    envs: dict[str, list[str] | None] = {}
    for p in sorted((root / ENV_DIR).glob("*.yaml")):
        env = load_environment(root, p.stem)
        envs[env.name] = list(env.allowed_flavors) if env.allowed_flavors is not None else None
    flavors = {}
    for name, f in cat.flavors.items():
        d = f.model_dump(exclude_none=True)
        d["allowed_in"] = [e for e, allowed in envs.items() if allowed is None or name in allowed]
        flavors[name] = d
    schema = json.loads((root / SCHEMA).read_text())
    return Catalog(flavors, envs, schema)


def _job_of(field_path: str, jobs: list[str]) -> tuple[str | None, str | None]:
    """'jobs.train.resource_flavor' -> ('train', 'resource_flavor'); job names may contain dots."""
    if not field_path.startswith("jobs."):
        return None, None
    rest = field_path[5:]
    for name in sorted(jobs, key=len, reverse=True):
        if rest == name:
            return name, None
        if rest.startswith(name + "."):
            return name, rest[len(name) + 1:].split(".")[0]
    return None, None


def _cycle_edges(edges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Edges inside a strongly connected component (Tarjan's algorithm, iterative): what to paint red."""
    graph: dict[str, list[str]] = {}
    for s, t in edges:
        graph.setdefault(s, []).append(t)
        graph.setdefault(t, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    comp: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on.add(v)
            if i < len(graph[v]):
                work.append((v, i + 1))
                w = graph[v][i]
                if w not in index:
                    work.append((w, 0))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp[w] = index[v]
                    if w == v:
                        break
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return [(s, t) for s, t in edges if comp[s] == comp[t]]


def analyze(root: Path, catalog: Catalog, file: str, text: str) -> dict:
    """Graph + problems of one pipeline text, valid or not (an unparseable text has no graph)."""
    raw = text.encode("utf-8")
    checked = check(file, raw, catalog.names, load=lambda _raw: load_text(text))  # one load per text
    try:
        data = load_text(text).data
    except LoadError:
        data = None
    jobs_out, edges = [], []
    dag = {}
    if isinstance(data, dict):
        dag = data.get("dag") if isinstance(data.get("dag"), dict) else {}
        defaults = data.get("defaults") if isinstance(data.get("defaults"), dict) else {}
        jobs = data.get("jobs") if isinstance(data.get("jobs"), dict) else {}
        for name, job in jobs.items():
            job = job if isinstance(job, dict) else {}
            flavor = job.get("resource_flavor") or defaults.get("resource_flavor")
            deps = job.get("depends_on") if isinstance(job.get("depends_on"), list) else []
            forbidden = [e for e, allowed in catalog.environments.items()
                         if allowed is not None and flavor is not None and flavor not in allowed]
            jobs_out.append({
                "name": str(name), "fields": job,
                "image": job.get("docker_image") or defaults.get("docker_image"),
                "image_from_defaults": not job.get("docker_image"),
                "flavor": flavor, "flavor_from_defaults": not job.get("resource_flavor"),
                "forbidden_in": forbidden, "problems": []})
            for d in deps:
                if isinstance(d, str):
                    edges.append((d, str(name)))
    names = [j["name"] for j in jobs_out]
    by_name = {j["name"]: j for j in jobs_out}
    problems = []
    for p in checked.problems:
        job, key = _job_of(p.field, names)
        item = {"line": p.line, "field": p.field, "message": p.message, "text": str(p), "job": job, "key": key}
        problems.append(item)
        if job:
            by_name[job]["problems"].append(item)
    known = set(names)
    cyc = set(_cycle_edges([(s, t) for s, t in edges if s in known]))
    return {
        "valid": checked.pipeline is not None, "sha256": checked.sha256, "problems": problems,
        "dag": dag, "defaults": (data or {}).get("defaults") if isinstance(data, dict) else None,
        "jobs": jobs_out,
        "edges": [{"source": s, "target": t, "cycle": (s, t) in cyc, "dangling": s not in known} for s, t in edges],
    }


def _fmt_cpu(m: int) -> str:
    return f"{m // 1000}" if m % 1000 == 0 else f"{m}m"


def _fmt_mem(b: int) -> str:
    for unit, f in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if b % f == 0:
            return f"{b // f}{unit}"
    return str(b)


def totals(catalog: Catalog, checked: Checked) -> dict:
    """What one run asks for: requests and limits summed, per flavor and in all."""
    from ml_platform.quantities import cpu_millicores, memory_bytes

    per: dict[str, dict] = {}
    for j in job_views(checked.pipeline):
        f = catalog.flavors[j.resource_flavor]
        row = per.setdefault(j.resource_flavor, {"jobs": 0, "cpu_request": 0, "cpu_limit": 0, "memory_request": 0,
                                                 "memory_limit": 0, "gpu": 0})
        row["jobs"] += 1
        row["cpu_request"] += cpu_millicores(f["cpu"]["request"])
        row["cpu_limit"] += cpu_millicores(f["cpu"]["limit"])
        row["memory_request"] += memory_bytes(f["memory"]["request"])
        row["memory_limit"] += memory_bytes(f["memory"]["limit"])
        row["gpu"] += (f.get("gpu") or {}).get("count", 0)
    total = {k: sum(r[k] for r in per.values()) for k in ("jobs", "cpu_request", "cpu_limit", "memory_request",
                                                         "memory_limit", "gpu")}

    def fmt(r):
        return {"jobs": r["jobs"], "cpu": f"{_fmt_cpu(r['cpu_request'])} / {_fmt_cpu(r['cpu_limit'])}",
                "memory": f"{_fmt_mem(r['memory_request'])} / {_fmt_mem(r['memory_limit'])}", "gpu": r["gpu"]}

    return {"by_flavor": {k: fmt(v) for k, v in sorted(per.items())}, "total": fmt(total) if per else None}


def preview(root: Path, catalog: Catalog, file: str, text: str) -> dict:
    """The DAG file `make render` would write for this text, and the run's totals (valid texts only)."""
    checked = check(file, text.encode("utf-8"), catalog.names)
    if checked.pipeline is None:
        return {"dag_file": None, "python": None, "totals": None,
                "problems": [str(p) for p in checked.problems]}
    try:
        python = render_one(checked, template_path(root, None),
                            {n: f["pool"] for n, f in catalog.flavors.items() if f.get("pool")})  # as make render
    except PlatformError as exc:
        return {"dag_file": None, "python": None, "totals": None, "problems": [str(exc)]}
    return {"dag_file": f"dags/{checked.pipeline.dag.name}.py", "python": python,
            "totals": totals(catalog, checked), "problems": []}


def list_pipelines(root: Path) -> list[dict]:
    out = []
    for p in pipeline_files(root):
        rel = p.relative_to(root).as_posix()
        try:
            data = load_yaml(p.read_bytes()).data
        except LoadError:
            data = None
        name = data.get("dag", {}).get("name") if isinstance(data, dict) and isinstance(data.get("dag"), dict) else None
        jobs = data.get("jobs") if isinstance(data, dict) and isinstance(data.get("jobs"), dict) else {}
        out.append({"file": rel, "dag": name, "jobs": len(jobs)})
    return out


__all__ = ["Catalog", "PIPELINES", "analyze", "list_pipelines", "load_catalog", "preview"]


_PRESET_WORDS = {"@once": "once, at the start date", "@continuous": "continuously, one run after another",
                 "@hourly": "every hour", "@daily": "every day at midnight", "@weekly": "every Sunday at midnight",
                 "@monthly": "on the first of every month", "@quarterly": "on the first of every quarter",
                 "@yearly": "every 1 January", "@annually": "every 1 January"}


def describe_schedule(schedule) -> str:
    """A schedule in plain words: 'At 03:00 AM, Monday through Friday', 'manual only'."""
    if schedule is None:
        return "manual only (no schedule)"
    if not isinstance(schedule, str):
        return ""
    if schedule.startswith("@"):
        return _PRESET_WORDS.get(schedule, "")
    try:
        from cron_descriptor import get_description

        return get_description(schedule) if len(schedule.split()) == 5 else ""
    except Exception:  # cron_descriptor raises its own types for malformed input; the validator says why
        return ""
