"""What a job is, without Airflow: image rules, flavor resolution, connection env. Both JobOperator and its
backends use these, and so does the build side when it validates pipelines (`make render`), so a rule is
written once and a pipeline passes render exactly when its DAG will parse.

Airflow is imported only inside the functions that need a running task (connection_env) or a DAG
context (current_dag_id).
"""

from __future__ import annotations

import re
from typing import Any

from .errors import JobSpecError, PlatformConfigError
from .flavors import Flavor, allowed_flavors, load_catalog

_TAG = re.compile(r":([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$")


def image_problem(image: str) -> str | None:
    """Why a job image reference is not pinned, or None (templated references are checked when rendered)."""
    if "{{" in image or "@sha256:" in image:
        return None  # templated: checked when rendered; pinned by digest: the best there is
    m = _TAG.search(image.rsplit("/", 1)[-1])
    if not m:
        return f"'{image}' has no tag (pin a version, e.g. {image}:1.0.0, or a digest)"
    if m.group(1) == "latest":
        return f"'{image}' uses 'latest', which changes under you (pin a version or a digest)"
    return None


def check_image(image: str) -> None:
    problem = image_problem(image)
    if problem:
        raise JobSpecError(f"docker_image {problem}")


def current_dag_id(kwargs: dict[str, Any]) -> str:
    dag = kwargs.get("dag")
    if dag is None:
        from airflow.sdk.definitions._internal.contextmanager import DagContext

        dag = DagContext.get_current()
    return getattr(dag, "dag_id", None) or "<no DAG>"


def resolve_job(task_id: str, dag_id: str, docker_image: str, resource_flavor: str) -> Flavor:
    """Validate a job at parse time; every message names the DAG and task."""
    try:
        if not isinstance(docker_image, str) or not docker_image:
            raise JobSpecError("docker_image is required")
        check_image(docker_image)
        return load_catalog().get(resource_flavor, allowed=allowed_flavors())
    except PlatformConfigError as exc:
        raise type(exc)(f"DAG '{dag_id}', task '{task_id}': {exc}") from None


def connection_env(mapping: dict[str, str]) -> dict[str, str]:
    """Env var name -> connection URI, resolved at execute time (never at parse time)."""
    from airflow.sdk import BaseHook

    return {var: BaseHook.get_connection(conn_id).get_uri() for var, conn_id in mapping.items()}
