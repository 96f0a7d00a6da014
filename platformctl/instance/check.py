"""make render / make plan: every pool and connection a pipeline names exists in every environment it can deploy to.

A job can deploy to an environment whose allowed_flavors admit its flavor; its pool is the one it (or the
pipeline's defaults) names, else its flavor's (flavors.yaml `pool:`). A pipeline's own connections (its
notifiers) must exist where all of its jobs can deploy. One Problem per job and field, file:line, did-you-mean,
naming the environments that lack it (as flavor problems are reported).
"""

from __future__ import annotations

import difflib
from pathlib import Path

from ..environments import ENV_DIR, Environment, load_environment
from ..errors import Problem
from ..pipelines.validate import Checked
from .settings import Declared, declared


def all_declared(root: Path, flavor_pools: dict[str, str],
                 needed_connections: dict[str, str] | None = None) -> dict[str, tuple[Environment, Declared]]:
    from ..deploy.live import environment_names

    envs = [load_environment(root, n) for n in environment_names(root)]
    others = [e for e in envs if e.name != "local"]
    return {e.name: (e, declared(root, e, others, flavor_pools, needed_connections)) for e in envs}


def admits(env: Environment, flavor: str | None) -> bool:
    return env.allowed_flavors is None or (flavor is not None and flavor in env.allowed_flavors)


def _hint(name: str, known: list[str], env_names: list[str], what: str) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    where = ", ".join(f"{ENV_DIR}/{n}.yaml" if n != "local" else "environments/local.yaml" for n in env_names)
    return ((f"did you mean '{close[0]}'? " if close else "") + f"declared: {', '.join(known) or 'none'}; "
            f"or add it to {what} in {where}")


def settings_problems(root: Path, checked: list[Checked], flavor_pools: dict[str, str],
                      warnings: list[Problem] | None = None) -> list[Problem]:
    """Problems (render refuses) and, appended to `warnings`, connections an environment that manages none
    (no `connections:` key) is not checked for."""
    envs = all_declared(root, flavor_pools)
    out: list[Problem] = []
    warnings = warnings if warnings is not None else []
    for c in checked:
        if c.problems:  # an invalid file is reported as such first
            continue
        flavors = {j.flavor for j in c.job_settings}
        for j in c.job_settings:
            targets = [(e, d) for e, d in envs.values() if admits(e, j.flavor)]
            pool = j.pool or flavor_pools.get(j.flavor or "")
            if pool:
                lacking = [e.name for e, d in targets if pool not in d.live_pools]
                if lacking:
                    known = sorted(set().union(*(envs[n][1].live_pools for n in lacking)))
                    if j.pool:
                        out.append(Problem(c.file, j.pool_line, j.pool_field or f"jobs.{j.job}.pool",
                                           f"'{pool}' is not a pool of {', '.join(lacking)} "
                                           f"({_hint(pool, known, lacking, 'pools')})"))
                    else:
                        out.append(Problem(c.file, j.flavor_line, f"jobs.{j.job}.resource_flavor",
                                           f"'{j.flavor}' runs its jobs in pool '{pool}' (flavors.yaml), which "
                                           f"{', '.join(lacking)} does not declare "
                                           f"({_hint(pool, known, lacking, 'pools')}; or set pool: on the job)"))
            for conn, field_, line in j.connections:
                out.extend(_conn_problem(c.file, line, field_, conn, targets, warnings))
        pipeline_targets = [(e, d) for e, d in envs.values() if all(admits(e, f) for f in flavors)]
        for conn, field_, line in c.dag_connections:
            out.extend(_conn_problem(c.file, line, field_, conn, pipeline_targets, warnings))
    for e, d in envs.values():
        b = e.bundle
        if b.kind == "s3" and d.manages_connections and not d.has_connection(b.aws_conn_id) and d.file:
            from ..yamlfile import line_of

            text = (root / d.file).read_text(errors="replace")
            line = line_of(text, ("bundle", "aws_conn_id")) or line_of(text, ("bundle",))
            out.append(Problem(d.file, line, "bundle.aws_conn_id",
                               f"'{b.aws_conn_id}' (the connection the DAG bundle reads S3 with) is not declared: "
                               "bundle.describe_connection is false, so add it to connections "
                               f"(e.g. {b.aws_conn_id}: {{conn_type: aws}})"))
    warnings[:] = list(dict.fromkeys(warnings))
    return list(dict.fromkeys(out))  # a defaults.pool or defaults connection: one line, not one per job


def _conn_problem(file: str, line: int | None, field_: str, conn: str,
                  targets: list[tuple[Environment, Declared]], warnings: list[Problem]) -> list[Problem]:
    unmanaged = [e.name for e, d in targets if not d.manages_connections and not d.adopts_connections]
    if unmanaged:
        warnings.append(Problem(file, line, field_, f"'{conn}' is not checked in {', '.join(unmanaged)}: "
                                f"{'it declares' if len(unmanaged) == 1 else 'they declare'} no connections "
                                "(add connections: to the environment file to have render and deploy check it)"))
    lacking = [e.name for e, d in targets if not d.has_connection(conn)]
    if not lacking:
        return []
    known = sorted(set().union(*(set(d.connections) for e, d in targets if e.name in lacking)))
    return [Problem(file, line, field_, f"'{conn}' is not a connection of {', '.join(lacking)} "
                                        f"({_hint(conn, known, lacking, 'connections')})")]


def needed_connections(root: Path) -> dict[str, str]:
    """conn id -> where the first pipeline names it (file:line field): what the built-in local adopts."""
    from ..pipelines.project import check_all

    out: dict[str, str] = {}
    for c in check_all(root):
        for conn, field_, line in [*(x for j in c.job_settings for x in j.connections), *c.dag_connections]:
            out.setdefault(conn, f"{c.file}:{line} {field_}" if line else f"{c.file} {field_}")
    return out
