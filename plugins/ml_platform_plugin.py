"""The ML platform inside Airflow: macros, the job operator's extra link, and a view (FastAPI app)
listing the flavor catalog and the image's build record at /ml-platform/.

Airflow 3 plugins cannot register operators: the JobOperator ships as the ml_platform package.
"""

from __future__ import annotations

import html
import os

from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse

from ml_platform.links import FlavorLink

# The image's build, as the Dockerfile's last ENV sets it (the same values as its OCI labels).
BUILD_ENV = {
    "version": "ML_PLATFORM_IMAGE_VERSION",
    "revision": "ML_PLATFORM_IMAGE_REVISION",
    "created": "ML_PLATFORM_IMAGE_CREATED",
    "airflow_version": "ML_PLATFORM_AIRFLOW_VERSION",
    "python_version": "ML_PLATFORM_PYTHON_VERSION",
    "lock_fingerprint": "ML_PLATFORM_LOCK_FINGERPRINT",
}


def build_record() -> dict | None:
    """The image's build (version, revision, created, Airflow/Python versions, lock fingerprint), or None
    outside an image built by make build."""
    if not os.environ.get(BUILD_ENV["version"]):
        return None
    return {key: os.environ.get(var, "") for key, var in BUILD_ENV.items()}


def image_version() -> str:
    """Macro {{ macros.ml_platform.image_version() }}: the platform image's version."""
    return os.environ.get(BUILD_ENV["version"]) or "unknown"


def flavor_limits(name: str) -> dict:
    """Macro {{ macros.ml_platform.flavor_limits('cpu-small') }}: a flavor's limits, for job arguments."""
    from ml_platform.flavors import load_catalog

    f = load_catalog().get(name)
    return {"cpu": f.cpu.limit, "memory": f.memory.limit, "gpu": f.gpu.count if f.gpu else 0}


app = FastAPI(title="ML platform", description="Flavors and build of the platform image")


@app.get("/flavors")
def flavors() -> dict:
    from ml_platform.flavors import allowed_flavors, load_catalog

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


@app.get("/", response_class=HTMLResponse)
def index() -> str:
    data = flavors()
    rows = "".join(
        f"<tr id='flavor-{html.escape(n)}'><td>{html.escape(n)}</td><td>{html.escape(f['description'])}</td>"
        f"<td>{f['cpu']['request']} / {f['cpu']['limit']}</td><td>{f['memory']['request']} / {f['memory']['limit']}</td>"
        f"<td>{(f.get('gpu') or {}).get('count', 0)}</td><td>{'yes' if n in data['allowed'] else 'no'}</td></tr>"
        for n, f in sorted(data["flavors"].items()))
    rec = build_record() or {}
    build_rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in sorted(rec.items()))
    return ("<html><head><title>ML platform</title></head><body><h1>ML platform</h1><h2>Flavors</h2>"
            "<table border=1><tr><th>name</th><th>description</th><th>cpu req/limit</th><th>memory req/limit</th>"
            f"<th>gpus</th><th>allowed here</th></tr>{rows}</table><h2>Image build</h2>"
            f"<table border=1>{build_rows or '<tr><td>no build record</td></tr>'}</table></body></html>")


class MlPlatformPlugin(AirflowPlugin):
    name = "ml_platform"
    macros = [image_version, flavor_limits]
    operator_extra_links = [FlavorLink()]
    fastapi_apps = [{"app": app, "url_prefix": "/ml-platform", "name": "ML platform"}]
    external_views = [{"name": "ML platform", "href": "/ml-platform/", "destination": "nav", "category": "browse",
                       "url_route": "ml-platform"}]
