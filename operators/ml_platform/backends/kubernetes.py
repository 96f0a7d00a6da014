"""Production backend: the cncf.kubernetes provider's KubernetesPodOperator, resources from the flavor."""

from __future__ import annotations

from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes.client import Configuration
from kubernetes.client import models as k8s

from ..flavors import Flavor
from ..spec import connection_env, current_dag_id, resolve_job
from ..links import FlavorLink


# One client configuration for the models built here: without it every model copies the default
# Configuration (logging set-up included), which dominated DAG parse time with many jobs.
_MODEL_CFG = Configuration()


def container_resources(flavor: Flavor) -> k8s.V1ResourceRequirements:
    requests = {"cpu": flavor.cpu.request, "memory": flavor.memory.request}
    limits = {"cpu": flavor.cpu.limit, "memory": flavor.memory.limit}
    if flavor.ephemeral_storage:
        requests["ephemeral-storage"] = limits["ephemeral-storage"] = flavor.ephemeral_storage
    if flavor.gpu:
        limits[flavor.gpu.resource] = str(flavor.gpu.count)  # GPUs: limits only, whole numbers
    return k8s.V1ResourceRequirements(requests=requests, limits=limits, local_vars_configuration=_MODEL_CFG)


def tolerations(flavor: Flavor) -> list[k8s.V1Toleration]:
    return [k8s.V1Toleration(**t.model_dump(exclude_none=True), local_vars_configuration=_MODEL_CFG)
            for t in flavor.tolerations]


class KubernetesJobOperator(KubernetesPodOperator):
    operator_extra_links = (FlavorLink(),)

    def __init__(self, *, task_id: str, docker_image: str, resource_flavor: str,
                 command: list[str] | None = None, arguments: list[str] | None = None,
                 env: dict[str, str] | None = None, secrets_from_connections: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        flavor = resolve_job(task_id, current_dag_id(kwargs), docker_image, resource_flavor)
        labels = {"ml-platform/flavor": resource_flavor, **(kwargs.pop("labels", None) or {})}
        kwargs.setdefault("name", task_id.replace("_", "-"))
        kwargs.setdefault("get_logs", True)
        kwargs.setdefault("on_finish_action", "delete_pod")
        super().__init__(
            task_id=task_id, image=docker_image, cmds=command, arguments=arguments, env_vars=dict(env or {}),
            container_resources=container_resources(flavor), node_selector=dict(flavor.node_selector),
            tolerations=tolerations(flavor), priority_class_name=flavor.priority_class, labels=labels, **kwargs,
        )
        self.docker_image = docker_image
        self.resource_flavor = resource_flavor
        self.secrets_from_connections = dict(secrets_from_connections or {})

    def execute(self, context):
        if self.secrets_from_connections:
            self.env_vars = [*self.env_vars, *(k8s.V1EnvVar(name=k, value=v)
                                               for k, v in connection_env(self.secrets_from_connections).items())]
        return super().execute(context)
