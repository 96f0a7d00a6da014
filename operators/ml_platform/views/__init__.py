"""The platform's page and JSON inside Airflow (the FastAPI app the plugin mounts at /ml-platform): each
pipeline of the running DAG bundle drawn as a graph (jobs with their flavor badges, edges from
depends_on), this environment's status, the flavor catalog with its limits, and the image's build record.

Every route requires an authenticated user allowed to read DAGs, checked by the API server's own security
dependency (`requires_access_dag("GET")`, as `GET /api/v2/dags`): a FastAPI app registered by a plugin is
mounted without Airflow's authentication. The user is the one of the request's bearer token
(`Authorization: Bearer`, from `POST /auth/token`) or of the UI's `_token` cookie (set at login, sent by the
browser with the page the Browse menu opens): 401 without either, 403 for a user without the permission.
The pipelines shown are those the user may read (per DAG, as the API's DAG list filters them).
"""

from __future__ import annotations

import os

from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader

from ..buildinfo import BUILD_ENV, build_record
from . import bundle_pipelines as _pipelines
from .graph import clip, layout

# the same permission as reading DAGs (the page shows every DAG's jobs, images and flavors)
app = FastAPI(title="ML platform", description="Pipelines, flavors, status and build of the platform image",
              dependencies=[Depends(requires_access_dag(method="GET"))])

_templates = Environment(loader=PackageLoader("ml_platform.views", "templates"), autoescape=True,
                         trim_blocks=False, keep_trailing_newline=True)
_templates.filters["clip"] = clip


@app.get("/flavors")
def flavors() -> dict:
    from ..flavors import allowed_flavors, load_catalog

    catalog = load_catalog()
    allowed = allowed_flavors()
    return {"allowed": sorted(allowed) if allowed is not None else catalog.names(),
            "flavors": {n: f.model_dump(exclude_none=True) for n, f in catalog.flavors.items()}}


@app.get("/build")
def build() -> dict:
    rec = build_record()
    if rec is None:
        raise HTTPException(404, f"no build record: {BUILD_ENV['version']} is not set "
                                 "(the image was not built by make build)")
    return rec


def _may_read(user, dag_id: str) -> bool:
    """Whether the auth manager lets this user read this DAG (a DAG-level permission, a team)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.configuration import conf

    team = None
    if conf.getboolean("core", "multi_team", fallback=False):
        from airflow.models.dag import DagModel

        team = DagModel.get_team_name(dag_id)
    return get_auth_manager().is_authorized_dag(method="GET", user=user, details=DagDetails(id=dag_id, team_name=team))


def readable_pipelines(user) -> list[_pipelines.Pipeline]:
    return [p for p in _pipelines.running_pipelines() if _may_read(user, p.dag_id)]


@app.get("/pipelines")
def pipelines(user: GetUserDep) -> dict:
    return {"pipelines": [p.as_dict() for p in readable_pipelines(user)]}


@app.get("/status")
def status() -> dict:
    """This environment's status: the image it runs and, per platform bundle, the live version in the
    store (what `make status` shows for it) and the version this machine serves."""
    bundles = [b.status() for b in _pipelines.configured_bundles() or [] if callable(getattr(b, "status", None))]
    image = {k: os.environ.get(v) for k, v in BUILD_ENV.items()}
    return {"environment": os.environ.get("AIRFLOW_VAR_ENVIRONMENT"), "image": image, "bundles": bundles}


@app.get("/", response_class=HTMLResponse)
def index(user: GetUserDep) -> str:
    fl = flavors()
    pipes = readable_pipelines(user)
    return _templates.get_template("index.html").render(
        status=status(), flavors=fl, build=build_record(),
        pipelines=[(p, layout(p, fl["flavors"], fl["allowed"])) for p in pipes])
