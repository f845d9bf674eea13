"""The MLflow connection `mlops_mlflow`: its format, the environment a task gets from it (and gives back),
and the message when the server refuses the credentials."""

import json
import os
from types import SimpleNamespace

import pytest

from mlops_airflow.hooks.mlflow import (
    MlflowHook,
    TrackingConnectionError,
    environment_for,
    tracking_connection,
    with_mlflow_connection,
)


def conn(**kw):
    base = dict(conn_type="http", host="mlflow.internal", port=None, schema=None, login=None, password=None)
    base.update(kw)
    extra = base.pop("extra", {})
    return SimpleNamespace(**base, extra_dejson=extra)


@pytest.mark.parametrize("kw, uri", [
    (dict(host="mlflow.internal", port=5000), "http://mlflow.internal:5000"),
    (dict(conn_type="https", host="mlflow.internal"), "https://mlflow.internal"),
    (dict(conn_type="https", host="mlflow.internal", port=443, schema="/tracking/"), "https://mlflow.internal:443/tracking"),
    (dict(host="https://mlflow.internal/"), "https://mlflow.internal"),
    (dict(host="https://someone:pw@mlflow.internal:8443/prefix"), "https://mlflow.internal:8443/prefix"),
])
def test_uri_from_host_port_and_schema(kw, uri):
    assert environment_for(conn(**kw), "mlops_mlflow") == {"MLFLOW_TRACKING_URI": uri}


def test_credentials_and_tls_options():
    env = environment_for(conn(login="u", password="p", extra={"insecure_tls": "true", "ca_bundle": "/ca.pem"}), "c")
    assert env == {"MLFLOW_TRACKING_URI": "http://mlflow.internal", "MLFLOW_TRACKING_USERNAME": "u",
                   "MLFLOW_TRACKING_PASSWORD": "p", "MLFLOW_TRACKING_INSECURE_TLS": "true",
                   "MLFLOW_TRACKING_SERVER_CERT_PATH": "/ca.pem"}
    assert environment_for(conn(password="tok"), "c")["MLFLOW_TRACKING_TOKEN"] == "tok"


def test_an_unusable_connection_says_every_problem_and_never_the_password():
    with pytest.raises(TrackingConnectionError) as err:
        environment_for(conn(conn_type="postgres", host="", password="s3cret"), "mlops_mlflow")
    assert "`mlops_mlflow`" in str(err.value) and "conn_type is 'postgres'" in str(err.value)
    assert "host is empty" in str(err.value) and "s3cret" not in str(err.value)
    with pytest.raises(TrackingConnectionError, match="login 'u' has no password"):
        environment_for(conn(login="u"), "mlops_mlflow")


def test_the_task_environment_is_set_for_the_block_and_restored(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///before.db")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "stale-token")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_MLFLOW", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": 5999, "login": "platform", "password": "pw-123"}))
    with tracking_connection() as target:
        assert target.uri == "http://127.0.0.1:5999" and target.conn_id == "mlops_mlflow"
        assert os.environ["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5999"
        assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "pw-123" and "MLFLOW_TRACKING_TOKEN" not in os.environ
        assert "pw-123" not in repr(target)
    assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:///before.db"
    assert os.environ["MLFLOW_TRACKING_TOKEN"] == "stale-token" and "MLFLOW_TRACKING_PASSWORD" not in os.environ


def test_another_connection_id_and_no_connection(monkeypatch):
    monkeypatch.setenv("MLOPS_MLFLOW_CONN_ID", "tracking_prod")
    monkeypatch.setenv("AIRFLOW_CONN_TRACKING_PROD", json.dumps({"conn_type": "https", "host": "mlflow.prod"}))
    with tracking_connection() as target:
        assert target.uri == "https://mlflow.prod" and target.source == "Airflow connection `tracking_prod`"
    monkeypatch.setenv("MLOPS_MLFLOW_CONN_ID", "absent")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///x.db")
    with tracking_connection() as target:  # today's behaviour: the environment, untouched
        assert target.uri == "sqlite:///x.db" and target.conn_id is None
        assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:///x.db"


@pytest.mark.parametrize("code, words", [("UNAUTHENTICATED", "refused the credentials (401 Unauthorized)"),
                                         ("PERMISSION_DENIED", "refused the request (403 Forbidden")])
def test_a_refusal_fails_the_task_with_the_connection_and_the_fix(monkeypatch, code, words):
    from airflow.sdk.exceptions import AirflowFailException
    from mlflow.exceptions import MlflowException
    from mlflow.protos import databricks_pb2

    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_MLFLOW", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": 5999, "login": "platform", "password": "pw-123"}))

    class Op:
        log = None

        @with_mlflow_connection
        def execute(self, context):
            raise MlflowException("API request failed", error_code=getattr(databricks_pb2, code))

    with pytest.raises(AirflowFailException) as err:
        Op().execute({})
    message = str(err.value)
    assert f"The MLflow tracking server at http://127.0.0.1:5999 {words}" in message
    assert "Airflow connection `mlops_mlflow`" in message and "pw-123" not in message


def test_other_errors_pass_through(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_MLOPS_MLFLOW", raising=False)
    with pytest.raises(ZeroDivisionError):
        with tracking_connection():
            _ = 1 / 0  # an error that is not MLflow's


def test_an_mlflow_connection_takes_the_scheme_from_its_host_and_prefixed_form_fields():
    assert environment_for(conn(conn_type="mlflow", host="mlflow.internal", port=5000), "c") == {
        "MLFLOW_TRACKING_URI": "http://mlflow.internal:5000"}
    env = environment_for(conn(conn_type="mlflow", host="https://mlflow.internal",
                               extra={"extra__mlflow__insecure_tls": True}), "c")
    assert env == {"MLFLOW_TRACKING_URI": "https://mlflow.internal", "MLFLOW_TRACKING_INSECURE_TLS": "true"}


def test_the_hook_hands_the_task_its_target_client_and_child_environment(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_MLFLOW", json.dumps(
        {"conn_type": "mlflow", "host": "127.0.0.1", "port": 5999, "login": "platform", "password": "pw-123"}))
    hook = MlflowHook()
    assert (hook.conn_type, hook.mlflow_conn_id) == ("mlflow", "mlops_mlflow")
    target = hook.get_target()
    assert target.environment["MLFLOW_TRACKING_PASSWORD"] == "pw-123" and "pw-123" not in repr(target)
    assert hook.get_conn().tracking_uri == "http://127.0.0.1:5999"

    class Op:
        log = None
        tracking = None

        @with_mlflow_connection
        def execute(self, context):
            return self.tracking.environment["MLFLOW_TRACKING_USERNAME"]

    assert Op().execute({}) == "platform"
