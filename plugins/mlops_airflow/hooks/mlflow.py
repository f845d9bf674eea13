"""`MlflowHook`: the MLflow tracking server and its credentials, from an Airflow connection.

The connection `mlops_mlflow` (`MLOPS_MLFLOW_CONN_ID` names another) gives the tracking URI and the
credentials: conn_type `mlflow` (the form this package declares), or http / https; host (a full URL is
accepted too; a bare host of an `mlflow` connection means http), port, schema (a path prefix, for a server
behind a static prefix), login + password (MLflow basic auth) or a password alone (a bearer token), and in
`extra` optionally `insecure_tls: true` or `ca_bundle: /path/to/ca.pem`. Without that connection nothing
changes: `MLFLOW_TRACKING_URI` from the environment, else the local SQLite store.

The hook hands a task what it needs explicitly: `get_conn()` a client bound to the server, `session()` the
TrackingTarget whose `environment` the local trainer subprocess is given (a pod gets the same from its
Secret). MLflow itself reads credentials only from the process environment at each request, so within
`session()` they are set in the task's own process and restored afterwards. The secrets are registered with
Airflow's secrets masker, never logged, never returned, never written to MLflow.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from airflow.sdk import BaseHook

DEFAULT_CONN_ID = "mlops_mlflow"
# Everything MLflow reads about the tracking server from the environment; set from the connection, and
# cleared when the connection does not give it (a stale token must not ride along with a new password).
TRACKING_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_TRACKING_SERVER_CERT_PATH")
AUTH_ERRORS = {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403}
CONN_TYPES = ("mlflow", "http", "https")

log = logging.getLogger(__name__)


class TrackingConnectionError(ValueError):
    """The connection exists but cannot be used as it is."""


@dataclass(frozen=True)
class TrackingTarget:
    """Where tracking goes and where that was decided. Its repr shows no secret; `environment` holds them,
    for a child process's environment only (never logged, returned or written to MLflow)."""

    uri: str
    source: str  # "connection `mlops_mlflow`", "MLFLOW_TRACKING_URI", "the local store"
    conn_id: str | None = None
    user: str | None = None
    # MLflow's variables for a process that talks to this server (secrets included: for a child's env only).
    environment: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def describe(self) -> str:
        who = f" as {self.user}" if self.user else ""
        return f"{self.uri}{who} (from {self.source})"


def conn_id() -> str:
    from mlops.settings import get_settings

    return get_settings().tracking.conn_id


def _truthy(value) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def environment_for(conn, name: str) -> dict[str, str]:
    """MLflow's environment variables for a connection (secrets included: for os.environ only)."""
    conn_type = (conn.conn_type or "").strip().lower()
    host = (conn.host or "").strip()
    problems = []
    if conn_type not in CONN_TYPES:
        problems.append(f"conn_type is {conn.conn_type!r}; use mlflow, http or https")
    if not host:
        problems.append("host is empty; set it to the tracking server's host name (or its URL)")
    if problems:
        raise TrackingConnectionError(f"MLflow connection `{name}`: " + "; ".join(problems))
    if "://" in host:
        parts = urlsplit(host)
        scheme, netloc, path = parts.scheme, parts.hostname or "", parts.path
        port = conn.port or parts.port
    else:
        scheme, netloc, path = "http" if conn_type == "mlflow" else conn_type, host, ""
        port = conn.port
    if port:
        netloc = f"{netloc}:{int(port)}"
    if conn.schema:
        path = f"{path.rstrip('/')}/{conn.schema.strip('/')}"
    uri = urlunsplit((scheme, netloc, path.rstrip("/"), "", ""))  # userinfo in the host is dropped, never logged
    env = {"MLFLOW_TRACKING_URI": uri}
    if conn.login and conn.password:
        env.update(MLFLOW_TRACKING_USERNAME=conn.login, MLFLOW_TRACKING_PASSWORD=conn.password)
    elif conn.password:
        env["MLFLOW_TRACKING_TOKEN"] = conn.password
    elif conn.login:
        raise TrackingConnectionError(f"MLflow connection `{name}`: login {conn.login!r} has no password; set the "
                                      "password (basic auth), or clear the login and put a token in the password")
    extra = {k.removeprefix("extra__mlflow__"): v for k, v in (conn.extra_dejson or {}).items()}
    if _truthy(extra.get("insecure_tls", False)):
        env["MLFLOW_TRACKING_INSECURE_TLS"] = "true"
    if extra.get("ca_bundle"):
        env["MLFLOW_TRACKING_SERVER_CERT_PATH"] = str(extra["ca_bundle"])
    return env


def _lookup(name: str):
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(name)
    except AirflowNotFoundException:
        return None


def auth_failure_message(exc: BaseException, target: TrackingTarget | None) -> str | None:
    """A message saying what to fix when `exc` is the tracking server refusing the credentials, else None."""
    code = getattr(exc, "error_code", None)
    if code not in AUTH_ERRORS or not any(c.__name__ == "MlflowException" for c in type(exc).__mro__):
        return None
    status = AUTH_ERRORS[code]
    where = target.uri if target else os.environ.get("MLFLOW_TRACKING_URI", "the tracking server")
    if target is not None and target.conn_id:
        fix = (f"fix the login/password of the Airflow connection `{target.conn_id}`"
               if status == 401 else
               f"grant the user {target.user or '(token)'} of the Airflow connection `{target.conn_id}` the permission "
               "on the MLflow server (an MLflow admin does this)")
    else:
        fix = ("create the Airflow connection "
               f"`{conn_id()}` with the tracking server's URL, login and password (or set MLFLOW_TRACKING_USERNAME "
               "and MLFLOW_TRACKING_PASSWORD)")
    what = "refused the credentials (401 Unauthorized)" if status == 401 else \
        "refused the request (403 Forbidden: these credentials lack the permission)"
    return (f"The MLflow tracking server at {where} {what}. To fix it, {fix}, then clear this task; retrying "
            "before that cannot help, so the task is not retried.")


class MlflowHook(BaseHook):
    """The MLflow tracking server of an Airflow connection (default `mlops_mlflow`), for tasks."""

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "mlflow"
    hook_name = "MLflow tracking server"

    def __init__(self, mlflow_conn_id: str | None = None, logger: logging.Logger | None = None):
        super().__init__(logger_name=None)
        self.mlflow_conn_id = mlflow_conn_id or conn_id()
        self._logger = logger or log

    def get_target(self) -> TrackingTarget | None:
        """Where tracking goes: the connection, else `MLFLOW_TRACKING_URI`; None leaves the local store.
        An unusable connection fails the task at once (retrying cannot fix it)."""
        from airflow.sdk.exceptions import AirflowFailException
        from airflow.sdk.log import mask_secret

        name = self.mlflow_conn_id
        conn = _lookup(name)
        if conn is None:
            uri = os.environ.get("MLFLOW_TRACKING_URI")
            inherited = {k: os.environ[k] for k in TRACKING_ENV if os.environ.get(k)}
            return TrackingTarget(uri, "MLFLOW_TRACKING_URI", environment=inherited) if uri else None
        try:
            env = environment_for(conn, name)
        except TrackingConnectionError as exc:
            raise AirflowFailException(str(exc)) from None
        for key in ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
            if env.get(key):
                mask_secret(env[key], key)
        return TrackingTarget(env["MLFLOW_TRACKING_URI"], f"Airflow connection `{name}`", name,
                              env.get("MLFLOW_TRACKING_USERNAME"), environment=env)

    def get_conn(self):
        """An MlflowClient bound to the connection's server; it authenticates inside `session()`, where MLflow
        finds the credentials."""
        from mlflow import MlflowClient

        target = self.get_target()
        return MlflowClient(tracking_uri=target.uri if target else None)

    @contextmanager
    def session(self):
        """The connection applies to this process for the block; yields the TrackingTarget (or None).

        MLflow's refusal of the credentials inside the block becomes an AirflowFailException that says which
        connection and what to fix (retrying cannot help until someone changes the connection)."""
        from airflow.sdk.exceptions import AirflowFailException

        target = self.get_target()
        applied = target is not None and target.conn_id is not None
        saved = {k: os.environ.get(k) for k in TRACKING_ENV}
        if applied:
            for key in TRACKING_ENV:
                os.environ.pop(key, None)
            os.environ.update(target.environment)
            self._logger.info("MLflow tracking: %s", target.describe())
        try:
            yield target
        except Exception as exc:
            message = auth_failure_message(exc, target)
            if message is None:
                raise
            raise AirflowFailException(message) from None
        finally:
            if applied:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value


def tracking_connection(logger: logging.Logger | None = None):
    """`MlflowHook().session()` for a block of code outside an operator."""
    return MlflowHook(logger=logger).session()


def with_mlflow_connection(execute):
    """Runs an operator's `execute` in its MlflowHook session; the target is `self.tracking` meanwhile."""
    import functools

    @functools.wraps(execute)
    def wrapper(self, context, *args, **kwargs):
        with MlflowHook(logger=self.log).session() as target:
            self.tracking = target
            return execute(self, context, *args, **kwargs)

    return wrapper


def verify_access(settings) -> None:
    """One cheap authenticated read, so that wrong credentials fail the run before any data is read or any
    model trained. Local stores need no check."""
    if not settings.tracking_uri.startswith(("http://", "https://")):
        return
    from mlops import tracking

    tracking.client(settings).search_experiments(max_results=1)
