"""JobOperator: every ML job is a container image run with a named resource flavor.

    from ml_platform.job import JobOperator
    JobOperator(task_id="train", docker_image="registry/ml/churn:1.4.2", resource_flavor="gpu-a100",
                command=["python", "-m", "churn.train"], env={"EPOCHS": "10"})

The backend is chosen by configuration: ML_PLATFORM_BACKEND=kubernetes (production, the cncf.kubernetes
provider's KubernetesPodOperator) or docker (one machine, the docker provider's DockerOperator), or an
explicit backend= argument. Bad inputs fail when the DAG is parsed, naming the DAG, task and fix.
"""

from __future__ import annotations

import os
import re
from typing import Any

from .errors import JobSpecError, PlatformConfigError
from .flavors import Flavor, allowed_flavors, load_catalog

BACKEND_ENV = "ML_PLATFORM_BACKEND"
BACKENDS = ("kubernetes", "docker")
_TAG = re.compile(r":([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$")


def current_dag_id(kwargs: dict[str, Any]) -> str:
    dag = kwargs.get("dag")
    if dag is None:
        from airflow.sdk.definitions._internal.contextmanager import DagContext

        dag = DagContext.get_current()
    return getattr(dag, "dag_id", None) or "<no DAG>"


def check_image(image: str) -> None:
    if "{{" in image:
        return  # templated: checked when rendered
    if "@sha256:" in image:
        return  # pinned by digest: the best there is
    last = image.rsplit("/", 1)[-1]
    m = _TAG.search(last)
    if not m:
        raise JobSpecError(f"docker_image '{image}' has no tag (pin a version, e.g. {image}:1.0.0, or a digest)")
    if m.group(1) == "latest":
        raise JobSpecError(f"docker_image '{image}' uses 'latest', which changes under you "
                           "(pin a version or a digest)")


def resolve_job(task_id: str, dag_id: str, docker_image: str, resource_flavor: str) -> Flavor:
    """Validate a job at parse time; every message names the DAG and task."""
    try:
        if not isinstance(docker_image, str) or not docker_image:
            raise JobSpecError("docker_image is required")
        check_image(docker_image)
        return load_catalog().get(resource_flavor, allowed=allowed_flavors())
    except PlatformConfigError as exc:
        raise type(exc)(f"DAG '{dag_id}', task '{task_id}': {exc}") from None


def job_operator_class(backend: str | None = None) -> type:
    """The operator class of the configured backend (see module docstring)."""
    backend = backend or os.environ.get(BACKEND_ENV, "kubernetes")
    if backend == "kubernetes":
        from .backends.kubernetes import KubernetesJobOperator

        return KubernetesJobOperator
    if backend == "docker":
        from .backends.docker import DockerJobOperator

        return DockerJobOperator
    raise JobSpecError(f"backend '{backend}' is not one of {', '.join(BACKENDS)} (set {BACKEND_ENV})")


def JobOperator(*, backend: str | None = None, **kwargs: Any):  # noqa: N802 - reads as the operator class
    """Create the job with the configured backend (see module docstring)."""
    return job_operator_class(backend)(**kwargs)


def _partial(*, backend: str | None = None, **kwargs: Any):
    """JobOperator.partial(...).expand(...): dynamic task mapping, one job per item.

    The mapped jobs are created when they run; the image and flavor are checked here, when the DAG
    is parsed, like an unmapped job's.
    """
    task_id = kwargs.get("task_id", "<no task_id>")
    resolve_job(task_id, current_dag_id(kwargs), kwargs.get("docker_image"), kwargs.get("resource_flavor"))
    return job_operator_class(backend).partial(**kwargs)


JobOperator.partial = _partial  # type: ignore[attr-defined]


def connection_env(mapping: dict[str, str]) -> dict[str, str]:
    """Env var name -> connection URI, resolved at execute time (never at parse time)."""
    from airflow.sdk import BaseHook

    return {var: BaseHook.get_connection(conn_id).get_uri() for var, conn_id in mapping.items()}
