"""Production backend: the cncf.kubernetes provider's KubernetesPodOperator, resources from the flavor."""

from __future__ import annotations

from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes.client import Configuration
from kubernetes.client import models as k8s

from ..flavors import Flavor
from ..spec import connection_env
from .base import Job, JobBackend


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


class KubernetesJobOperator(JobBackend, KubernetesPodOperator):
    @classmethod
    def provider_arguments(cls, job: Job, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs.setdefault("name", job.task_id.replace("_", "-"))
        kwargs.setdefault("get_logs", True)
        kwargs.setdefault("on_finish_action", "delete_pod")
        return dict(image=job.image, cmds=job.command, arguments=job.arguments, env_vars=job.env,
                    container_resources=container_resources(job.flavor), node_selector=dict(job.flavor.node_selector),
                    tolerations=tolerations(job.flavor), priority_class_name=job.flavor.priority_class,
                    labels=job.labels, **kwargs)

    def execute(self, context):
        if self.secrets_from_connections:
            self.env_vars = [*self.env_vars, *(k8s.V1EnvVar(name=k, value=v)
                                               for k, v in connection_env(self.secrets_from_connections).items())]
        return super().execute(context)
