"""What every backend's operator takes and keeps: JobOperator's arguments, stated once.

A backend is `class XJobOperator(JobBackend, <the provider's operator>)` with a `provider_arguments`
that maps the validated Job onto the provider operator's constructor; it writes no __init__ of its own.
JobBackend is made by Airflow's operator metaclass, so its __init__ is the one Airflow wraps (default_args,
the DAG context) and reads (partial/expand check their keywords against its parameters), as it would a
backend's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow.sdk.bases.operator import BaseOperatorMeta

from ..flavors import Flavor
from ..links import FlavorLink
from ..spec import current_dag_id, resolve_job


@dataclass(frozen=True)
class Job:
    """One job as the pipeline states it, checked at parse time."""

    task_id: str
    image: str
    flavor: Flavor
    command: list[str] | None
    arguments: list[str] | None
    env: dict[str, str]
    labels: dict[str, str]  # the flavor's label, then the caller's (which win)


class JobBackend(metaclass=BaseOperatorMeta):
    operator_extra_links = (FlavorLink(),)

    def __init__(self, *, task_id: str, docker_image: str, resource_flavor: str,
                 command: list[str] | None = None, arguments: list[str] | None = None,
                 env: dict[str, str] | None = None, secrets_from_connections: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        flavor = resolve_job(task_id, current_dag_id(kwargs), docker_image, resource_flavor)
        labels = {"ml-platform/flavor": resource_flavor, **(kwargs.pop("labels", None) or {})}
        job = Job(task_id, docker_image, flavor, command, arguments, dict(env or {}), labels)
        super().__init__(task_id=task_id, **self.provider_arguments(job, kwargs))
        self.docker_image = docker_image
        self.resource_flavor = resource_flavor
        self.flavor = flavor
        self.secrets_from_connections = dict(secrets_from_connections or {})

    @classmethod
    def provider_arguments(cls, job: Job, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The provider operator's constructor arguments for job; kwargs: the caller's other arguments."""
        raise NotImplementedError
