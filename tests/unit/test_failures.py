"""mlops.failures: which errors a retry can fix, on real exceptions (scikit-learn's, MLflow's against a closed
port and a real HTTP server, the platform's own), and the trainer process's exit code and last line."""

import importlib
import json
import os
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer

import pandas as pd
import pytest

from helpers import MODELS
from mlops import failures
from mlops.authoring import AuthoringError
from mlops.failures import PERMANENT_EXIT_CODE, TRANSIENT_EXIT_CODE, classify, from_exit_code, parse_line


def raised(fn, *args):
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001 - the exception is what the test is about
        return exc
    raise AssertionError(f"{fn} raised nothing")


def wrapped(wrapper, inner: BaseException) -> BaseException:
    """`wrapper` raised from `inner`, as the platform wraps an author's or a library's error."""
    try:
        try:
            raise inner
        except BaseException as exc:
            raise wrapper from exc
    except BaseException as outer:  # noqa: BLE001
        return outer


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def answering(status: int, body: str):
    """An HTTP server that answers every request with `status` and `body`, as a tracking server or a proxy
    in front of it would."""
    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def mlflow_fails_fast(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow's own backoff would take minutes
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")


def mlflow_error(uri: str) -> Exception:
    from mlflow.tracking import MlflowClient

    return raised(MlflowClient(tracking_uri=uri).search_experiments, 1)


def test_a_hyperparameter_the_library_rejects_is_permanent():
    from trainers.churn import train

    frame = pd.DataFrame({"tenure_months": [1, 2, 3, 4], "monthly_charges": [10.0, 20.0, 30.0, 40.0],
                          "support_calls": [0, 1, 0, 2], "contract": ["one-year"] * 4, "churned": [0, 1, 0, 1]})
    rejected = raised(train, frame, {"C": -5})
    assert type(rejected).__name__ == "InvalidParameterError"
    failure = classify(wrapped(AuthoringError(f"trainers.churn:train raised {rejected}"), rejected))
    assert failure.permanent and failure.kind == "authoring" and failure.exit_code == PERMANENT_EXIT_CODE
    assert "'C' parameter of LogisticRegression" in failure.reason and "\n" not in failure.reason


def test_the_platforms_permanent_errors():
    from mlops.data import DataError
    from mlops.spec import SpecError, parse_spec
    from mlops.train import DataChangedError

    spec_error = raised(parse_spec, {"name": "x"})
    assert isinstance(spec_error, SpecError)
    cases = {"spec": spec_error, "data": DataError("no partition for 2026-01-14"),
             "data_changed": DataChangedError("the window changed after validation"),
             "authoring": AuthoringError("cannot import 'trainers.nope'")}
    for kind, exc in cases.items():
        failure = classify(exc)
        assert failure.permanent and failure.kind == kind, (exc, failure)


def test_every_class_named_in_the_tables_exists():
    """The tables name classes as strings (no imports in the core); a rename must not go unnoticed."""
    for module, name in [*failures._PERMANENT_CLASSES, *failures._TRANSIENT_CLASSES]:
        cls = getattr(importlib.import_module(module), name, None)
        assert isinstance(cls, type) and issubclass(cls, BaseException), f"{module}.{name}"


def test_tracking_server_down_or_overloaded_is_transient(mlflow_fails_fast):
    refused = classify(mlflow_error(f"http://127.0.0.1:{closed_port()}"))
    assert not refused.permanent and refused.kind == "network" and refused.exit_code == TRANSIENT_EXIT_CODE
    assert "Connection refused" in refused.reason
    for status, body in ((503, '{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "down"}'),
                         (502, "<html>Bad Gateway</html>"), (500, '{"error_code": "INTERNAL_ERROR"}'),
                         (429, '{"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"}')):
        with answering(status, body) as uri:
            failure = classify(mlflow_error(uri))
        assert not failure.permanent and failure.kind == "server_unavailable", (status, failure)


def test_tracking_server_refusing_or_rejecting_the_request_is_permanent(mlflow_fails_fast):
    for status, body, kind in ((401, "You are not authenticated.", "tracking_refused"),
                               (403, '{"error_code": "PERMISSION_DENIED", "message": "no"}', "tracking_refused"),
                               (404, '{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such run"}',
                                "tracking_rejected")):
        with answering(status, body) as uri:
            failure = classify(mlflow_error(uri))
        assert failure.permanent and failure.kind == kind, (status, failure)


def test_a_wrapped_network_error_is_transient_a_tls_error_is_not():
    from google.api_core.exceptions import ServiceUnavailable
    from requests.exceptions import SSLError

    from mlops.data import DataError
    from mlops.locks import LockTimeout

    reset = classify(wrapped(AuthoringError("fail_once:train raised ConnectionResetError"),
                             ConnectionResetError(104, "Connection reset by peer")))
    assert not reset.permanent and reset.kind == "network"
    bucket = classify(wrapped(DataError("cannot read gs://bucket/churn/date=2026-01-14"), ServiceUnavailable("busy")))
    assert not bucket.permanent and bucket.kind == "storage_unavailable"
    assert classify(LockTimeout("churn's lock is held")).kind == "busy"
    tls = classify(SSLError("certificate verify failed"))
    assert tls.permanent and tls.kind == "tls"
    assert classify(wrapped(AuthoringError("x raised SSLError"), SSLError("certificate verify failed"))).permanent


def test_what_is_not_known_to_be_permanent_is_retried():
    failure = classify(RuntimeError("something odd"))
    assert not failure.permanent and failure.kind == "unknown" and failure.exit_code == TRANSIENT_EXIT_CODE


def test_exit_codes_and_the_reason_line():
    line = classify(AuthoringError("trainers.churn:train raised InvalidParameterError: bad C")).line()
    assert line == "MLOPS_FAILURE permanent authoring: AuthoringError: trainers.churn:train raised " \
                   "InvalidParameterError: bad C"
    reported = from_exit_code(PERMANENT_EXIT_CODE, ["Traceback ...", f"2026-01-15 [base] {line}"])
    assert reported.permanent and reported.kind == "authoring" and reported.reason.endswith("bad C")
    assert from_exit_code(PERMANENT_EXIT_CODE, []).permanent  # the code decides, the line only tells why
    assert not from_exit_code(TRANSIENT_EXIT_CODE, [line]).permanent  # a line that contradicts the code
    assert from_exit_code(0) is None and from_exit_code(None) is None
    assert from_exit_code(1).kind == "unknown" and from_exit_code(1).retryable
    assert from_exit_code(143).kind == "killed" and from_exit_code(-9).kind == "killed"
    assert parse_line(["no such line"]) is None


def test_trainer_process_exits_transient_when_the_tracking_server_is_down(platform, tmp_path):
    """The real entrypoint, as the local operator and the pod run it: the window loads, then the tracking
    server refuses the connection; exit code 75, the reason as the last line and in the termination log."""
    termination_log = tmp_path / "termination-log"
    termination_log.write_text("")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{closed_port()}",
           "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", failures.TERMINATION_LOG_ENV: str(termination_log)}
    out = subprocess.run([sys.executable, "-m", "mlops.train", "--spec", str(MODELS / "churn.yaml"),
                          "--data-interval-end", "2026-01-15T00:00:00+00:00",
                          "--result-path", str(tmp_path / "return.json"), "--params-json", json.dumps({})],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == TRANSIENT_EXIT_CODE, out.stdout[-2000:] + out.stderr[-3000:]
    last = out.stderr.strip().splitlines()[-1]  # after the traceback, on its stream
    assert last.startswith("MLOPS_FAILURE transient network: MlflowException: API request to") and \
        "Connection refused" in last, last
    assert termination_log.read_text() == last
    assert "Traceback" in out.stderr  # the whole story stays in the log
    assert not (tmp_path / "return.json").exists()
