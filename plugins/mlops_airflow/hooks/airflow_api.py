"""A small client for Airflow's REST API (v2), for maintenance tasks.

Tasks in Airflow 3 may not touch the metadata DB, so whatever a task needs to know about other task
instances, or change about pools, goes through the API server like any other client. Credentials come
from an Airflow connection (default id `mlops_airflow_api`):

    AIRFLOW_CONN_MLOPS_AIRFLOW_API='{"conn_type": "http", "host": "http://airflow-api-server:8080",
                                     "login": "mlops-maintenance", "password": "..."}'

The user needs to read task instances and edit pools (`op` or `admin` with the simple auth manager).
A token in the connection's extra (`{"token": "..."}`) is used as is instead of logging in.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import requests

DEFAULT_CONN_ID = "mlops_airflow_api"


class AirflowApiError(RuntimeError):
    pass


@dataclass
class AirflowApi:
    base_url: str
    username: str | None = None
    password: str | None = None
    token: str | None = None
    timeout: float = 30.0
    verify: bool | str = True

    @classmethod
    def from_connection(cls, conn_id: str = DEFAULT_CONN_ID) -> "AirflowApi":
        from airflow.sdk import BaseHook

        try:
            conn = BaseHook.get_connection(conn_id)
        except Exception as exc:  # noqa: BLE001 - the SDK raises its own not-found type
            raise AirflowApiError(
                f"the Airflow connection '{conn_id}' is not defined: it tells maintenance tasks where Airflow's "
                "API server is and who they log in as, e.g. AIRFLOW_CONN_MLOPS_AIRFLOW_API='{\"conn_type\": "
                "\"http\", \"host\": \"http://localhost:8080\", \"login\": \"...\", \"password\": \"...\"}'"
            ) from exc
        host = (conn.host or "").rstrip("/")
        if not host:
            raise AirflowApiError(f"the Airflow connection '{conn_id}' has no host; set it to the API server's URL")
        if "://" not in host:
            host = f"{conn.schema or 'http'}://{host}"
        if conn.port:
            host = f"{host}:{conn.port}"
        extra = conn.extra_dejson or {}
        return cls(base_url=host, username=conn.login, password=conn.password, token=extra.get("token"),
                   verify=extra.get("verify", True))

    # -- plumbing ----------------------------------------------------------------------------------------
    def _login(self) -> str:
        if self.token:
            return self.token
        if not (self.username and self.password):
            raise AirflowApiError(f"no credentials for {self.base_url}: set login and password (or an extra "
                                  "'token') on the connection")
        resp = requests.post(f"{self.base_url}/auth/token", json={"username": self.username, "password": self.password},
                             timeout=self.timeout, verify=self.verify)
        if resp.status_code not in (200, 201):
            raise AirflowApiError(f"logging in to {self.base_url} as {self.username} failed: HTTP {resp.status_code} "
                                  f"{resp.text[:200]}")
        self.token = resp.json()["access_token"]
        return self.token

    def _call(self, method: str, path: str, *, ok_missing: bool = False, **kwargs) -> dict | None:
        resp = requests.request(method, f"{self.base_url}/api/v2{path}", timeout=self.timeout, verify=self.verify,
                                headers={"Authorization": f"Bearer {self._login()}"}, **kwargs)
        if resp.status_code == 404 and ok_missing:
            return None
        if resp.status_code >= 400:
            raise AirflowApiError(f"{method} {path} on {self.base_url}: HTTP {resp.status_code} {resp.text[:300]}")
        return resp.json() if resp.content else {}

    # -- what maintenance needs --------------------------------------------------------------------------
    def task_state(self, dag_id: str, run_id: str, task_id: str) -> tuple[str | None, int] | None:
        """(state, try_number) of an unmapped task instance, or None when it does not exist."""
        found = self._call("GET", f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
                                  f"{quote(task_id, safe='')}", ok_missing=True)
        return None if found is None else (found.get("state"), int(found.get("try_number") or 0))

    def pool(self, name: str) -> dict | None:
        return self._call("GET", f"/pools/{quote(name, safe='')}", ok_missing=True)

    def put_pool(self, name: str, slots: int, description: str, include_deferred: bool = True) -> None:
        body = {"name": name, "slots": slots, "description": description, "include_deferred": include_deferred}
        if self.pool(name) is None:
            self._call("POST", "/pools", json=body)
        else:
            self._call("PATCH", f"/pools/{quote(name, safe='')}", json=body)
