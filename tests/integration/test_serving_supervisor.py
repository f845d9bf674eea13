"""The local serving supervisor as a process of its own: started once however many ask, refusing a second
copy and requests without its token, replaced when its pid file is stale, and gone after `stop`."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from mlops.serving import control


@pytest.fixture
def root(tmp_path):
    folder = tmp_path / "serving"
    yield folder
    control.stop(folder)


def test_one_supervisor_however_many_ask_and_none_after_stop(root):
    first = control.ensure(root, "127.0.0.1")
    assert control.ensure(root, "127.0.0.1").pid == first.pid
    assert first.status() == {"pid": first.pid, "host": "127.0.0.1", "models": {}}
    assert oct((root / "supervisor.json").stat().st_mode & 0o777) == "0o600"  # the token is in it

    second = subprocess.run([sys.executable, "-m", "mlops.serving", "supervise", "--dir", str(root)],
                            capture_output=True, text=True, timeout=60)
    assert second.returncode != 0 and "a supervisor already runs for" in second.stderr, second.stderr

    assert control.stop(root) and not control._alive(first.pid)
    assert control.find(root) is None and not (root / "supervisor.json").exists()
    assert control.stop(root) is False  # nothing to stop


def test_requests_without_the_token_are_refused(root):
    sup = control.ensure(root, "127.0.0.1")
    request = urllib.request.Request(sup.url + "/status", headers={"X-Mlops-Token": "guess"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403 and "X-Mlops-Token" in refused.value.read().decode()


def test_a_stale_pid_file_is_replaced_by_a_new_supervisor(root):
    root.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (root / "supervisor.json").write_text(json.dumps({"pid": int(dead.stdout), "control_url": "http://127.0.0.1:9",
                                                      "token": "x"}))
    assert control.find(root) is None
    fresh = control.ensure(root, "127.0.0.1")
    assert fresh.pid != int(dead.stdout) and fresh.status()["models"] == {}


def test_bad_requests_say_what_is_wrong(root):
    sup = control.ensure(root, "127.0.0.1")
    with pytest.raises(control.SupervisorError, match="role must be candidate or stable"):
        sup.start("churn", "1", str(root / "nowhere"), "canary")
    with pytest.raises(control.SupervisorError, match="KeyError"):
        sup._call("POST", "/start", {"model": "churn"})


def test_the_supervisor_gets_no_credentials_of_the_task_that_starts_it(root, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "canary-4f1e")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "canary-9b2c")
    sup = control.ensure(root, "127.0.0.1")
    environ = open(f"/proc/{sup.pid}/environ", "rb").read()
    assert b"canary-" not in environ and b"MLFLOW_DISABLE_TELEMETRY=true" in environ
