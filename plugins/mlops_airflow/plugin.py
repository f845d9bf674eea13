"""The platform's Airflow plugin: operator extra links, the fleet app (page + JSON API + Data Docs) at
/mlops, and a "Model fleet" entry in the Airflow navigation.

Airflow finds it through the package's `airflow.plugins` entry point (pyproject.toml) and imports it in every
Airflow process, tasks included, so it stays light: the FastAPI app is built on its first request, in the
API server only.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from mlops_airflow.links import ALL_LINKS, FLEET_PREFIX


class LazyFleetApp:
    """An ASGI app that builds the fleet FastAPI app on its first call (keeps plugin import cheap)."""

    def __init__(self):
        self._app = None

    def _get(self):
        if self._app is None:
            from mlops_airflow.fleet.app import create_app

            self._app = create_app()
        return self._app

    async def __call__(self, scope, receive, send):
        await self._get()(scope, receive, send)


class MlopsPlugin(AirflowPlugin):
    name = "mlops"
    # Links are computed by the worker when a task ends and read back from XCom by the API server; they are
    # listed here so `airflow plugins` shows them. `operators` stays empty: a plugin link bound to an
    # operator class would be called in the API server, where the task's XCom API is not available.
    operator_extra_links = ALL_LINKS
    fastapi_apps = [{"app": LazyFleetApp(), "url_prefix": FLEET_PREFIX, "name": "mlops fleet"}]
    external_views = [{
        "name": "Model fleet",
        "href": f"{FLEET_PREFIX}/fleet",
        "destination": "nav",
        "url_route": "mlops-fleet",
        "category": "browse",
    }]
