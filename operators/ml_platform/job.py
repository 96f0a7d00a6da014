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
from typing import Any

from .errors import JobSpecError
from .spec import check_image, connection_env, current_dag_id, resolve_job  # noqa: F401 - the public names

BACKEND_ENV = "ML_PLATFORM_BACKEND"
BACKENDS = ("kubernetes", "docker")


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

