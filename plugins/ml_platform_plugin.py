"""The ML platform inside Airflow: registers the macros, the job operator's extra link and the platform
page (a FastAPI app at /ml-platform/, in the Browse menu). Everything they do lives in the in-image
package `ml_platform` (the page: `ml_platform.views`).

Airflow 3 plugins cannot register operators: the JobOperator ships as the ml_platform package.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from ml_platform.buildinfo import flavor_limits, image_version
from ml_platform.links import VIEW_PREFIX, FlavorLink


class MlPlatformPlugin(AirflowPlugin):
    name = "ml_platform"
    macros = [image_version, flavor_limits]
    operator_extra_links = [FlavorLink()]
    external_views = [{"name": "ML platform", "href": f"{VIEW_PREFIX}/", "destination": "nav", "category": "browse",
                       "url_route": "ml-platform"}]

    @property
    def fastapi_apps(self) -> list[dict]:
        """Imported when asked for (the API server, `airflow plugins`): the views import the API server's
        security module, which every other process loading plugins (scheduler, workers, tasks) does not need."""
        from ml_platform.views import app

        return [{"app": app, "url_prefix": VIEW_PREFIX, "name": "ML platform"}]
