"""The managed Airflow instance's configuration: Helm values for the official Apache Airflow chart,
and the same settings as environment variables for any other host that runs a custom image."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import yaml

from ..environments import Environment
from ..errors import ImageMissing

BUNDLE_CLASS = "ml_platform.bundle.PlatformDagBundle"  # in the image: follows <prefix>/current.json
BUNDLE_NAME = "ml-platform"


# Nothing written here depends on the live bundle version: the bundle reads the environment's pointer
# itself, so a deploy or rollback writes the same bytes. The files change with the image (build,
# promote) and with environments/<env>.yaml. `live_prefix` is the environment's stable prefix (callers
# pass env.bundle.prefix); `local_path` the folder store's absolute path (kind local).
def bundle_config(env: Environment, live_prefix: str | None = None, local_path: str | None = None) -> list[dict]:
    b = env.bundle
    if b.kind == "s3":
        kwargs = {"store": "s3", "bucket_name": b.bucket, "prefix": b.prefix, "aws_conn_id": b.aws_conn_id,
                  "refresh_interval": b.refresh_interval}
        if b.endpoint_url:
            kwargs["endpoint_url"] = b.endpoint_url
    else:
        kwargs = {"store": "local", "store_path": local_path, "prefix": b.prefix,
                  "refresh_interval": b.refresh_interval}
    return [{"name": BUNDLE_NAME, "classpath": BUNDLE_CLASS, "kwargs": {**kwargs, **signing_kwargs(env)}}]


def signing_kwargs(env: Environment) -> dict:
    """What the bundle verifies versions with (issue 38): the environment's name and allowed keys; nothing
    when the environment neither lists keys nor requires signatures (the config stays as it was)."""
    s = env.signing
    if not s.allowed_keys and not s.require_signatures:
        return {}
    return {"environment": env.name, "allowed_keys": list(s.allowed_keys), "require_signatures": s.require_signatures}


def connection_var(env: Environment) -> dict[str, str]:
    """The S3 connection the bundle reads with, described without credentials: the AWS hook then takes
    them from the usual chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from the referenced secret, an
    instance role, IRSA, ...)."""
    b = env.bundle
    if b.kind != "s3" or not b.describe_connection:
        return {}
    extra = {k: v for k, v in (("endpoint_url", b.endpoint_url), ("region_name", b.region)) if v}
    conn = {"conn_type": "aws", **({"extra": extra} if extra else {})}
    return {f"AIRFLOW_CONN_{b.aws_conn_id.upper()}": json.dumps(conn, sort_keys=True)}


def env_vars(env: Environment, live_prefix: str | None, image: dict, local_path: str | None = None) -> dict[str, str]:
    out = {"AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundle_config(env, live_prefix, local_path)),
           "AIRFLOW__CORE__EXECUTOR": env.executor,
           "ML_PLATFORM_ENVIRONMENT": env.name, "ML_PLATFORM_IMAGE": image_ref(image)}
    out.update(connection_var(env))
    if env.allowed_flavors is not None:
        out["ML_PLATFORM_ALLOWED_FLAVORS"] = ",".join(env.allowed_flavors)
    for section, values in env.airflow_config.items():
        for key, value in values.items():
            out[f"AIRFLOW__{section.upper()}__{key.upper()}"] = value
    for key, value in env.variables.items():
        out[f"AIRFLOW_VAR_{key.upper()}"] = value
    return out


def image_ref(image: dict) -> str:
    if image.get("digest"):
        return f"{image['repository']}@{image['digest']}"
    return f"{image['repository']}:{image['tag']}"


def require_image(env: Environment, image: dict) -> None:
    """No config without an image: the chart would pull a tag that does not exist (`tag: null`), or the
    stock image, which lacks the platform's bundle class."""
    if not image.get("tag") or not image.get("repository"):
        raise ImageMissing(f"no image for {env.name}: nothing was built or promoted, so its Airflow config "
                           f"would name no image", "run make build (and make push) or make promote ENV="
                           f"{env.name} VERSION=..., then deploy again")


def helm_values(env: Environment, live_prefix: str | None, image: dict, local_path: str | None = None) -> dict:
    """Values for the official chart (apache-airflow/airflow): Airflow version, images.airflow, the executor,
    the DAG bundle list, the bundle's connection and its credentials secret (by name)."""
    require_image(env, image)
    airflow_image = {"repository": image["repository"], "tag": image["tag"], "pullPolicy": env.registry.pull_policy}
    if env.registry.tag_policy == "digest" and image.get("digest"):
        airflow_image["digest"] = image["digest"]
    variables = env_vars(env, live_prefix, image, local_path)
    config_overrides = {section: dict(values) for section, values in env.airflow_config.items()}
    bundles = bundle_config(env, live_prefix, local_path)
    if not env.managed.chart_has_bundle_list:  # charts before 1.19: Airflow's own option, as a config override
        config_overrides.setdefault("dag_processor", {})["dag_bundle_config_list"] = json.dumps(bundles)
    values: dict = {}
    if image.get("airflow_version"):
        # the chart switches its Airflow 3 behaviour on airflowVersion; defaultAirflowTag is the tag of
        # its stock image, used only where images.airflow does not apply
        values["airflowVersion"] = image["airflow_version"]
        values["defaultAirflowTag"] = image["airflow_version"]
    values["images"] = {"airflow": airflow_image}
    # named, never the chart's default: the image's checks load exactly this executor (chart 1.22: Celery)
    values["executor"] = env.executor
    if env.managed.chart_has_bundle_list:
        # the chart renders [dag_processor] dag_bundle_config_list from this list itself
        values["dagProcessor"] = {"dagBundleConfigList": bundles}
    if config_overrides:
        values["config"] = config_overrides
    values["env"] = [{"name": k, "value": v} for k, v in sorted(variables.items()) if not k.startswith("AIRFLOW__")]
    if env.bundle.kind == "s3" and env.bundle.credentials_secret:
        values["secret"] = [{"envName": key, "secretName": env.bundle.credentials_secret, "secretKey": key}
                            for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")]
    return values


def write_config(root: Path, env: Environment, live_prefix: str, image: dict,
                 local_path: str | None = None) -> tuple[Path, Path]:
    values_path, env_path = env.managed.paths(root, env.name)  # resolved, inside root, or UnsafePathError
    values_path.parent.mkdir(parents=True, exist_ok=True)
    env_path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# Generated by `make deploy ENV={env.name}` / `make promote`: do not edit by hand.\n"
    values_path.write_text(header + yaml.safe_dump(helm_values(env, live_prefix, image, local_path), sort_keys=False))
    lines = [f"{k}={_quote(v)}" for k, v in sorted(env_vars(env, live_prefix, image, local_path).items())]
    env_path.write_text(header + "\n".join(lines) + "\n")
    return values_path, env_path


def _quote(v: str) -> str:
    """Shell quoting (shlex decides where a value needs it; an empty value stays `K=`): the file reads the
    same to sh, docker compose's env_file and python-dotenv for every value this module writes."""
    return shlex.quote(v) if v else v
