"""Operator extra link: from a job task to its flavor in the platform view."""

from __future__ import annotations

from airflow.sdk import BaseOperatorLink

VIEW_PREFIX = "/ml-platform"


class FlavorLink(BaseOperatorLink):
    name = "Flavor"

    def get_link(self, operator, *, ti_key) -> str:
        flavor = getattr(operator, "resource_flavor", "")
        return f"{VIEW_PREFIX}/#flavor-{flavor}"
