"""`make ui`'s Airflow (scripts/local_airflow.py): every component reachable from this machine only, and a
LocalExecutor that fits the machine instead of Airflow's 32 workers."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from helpers import ROOT

pytestmark = pytest.mark.slow
LOOPBACK = {"127.0.0.1", "::1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(root: psutil.Process) -> dict[int, str]:
    """Listening TCP sockets of the process tree: port -> address."""
    pids = {root.pid, *(c.pid for c in root.children(recursive=True))}
    return {c.laddr.port: c.laddr.ip for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.pid in pids}


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=3) as resp:
            health = json.load(resp)
    except (OSError, ValueError):
        return False
    return all((health.get(k) or {}).get("status") == "healthy" for k in ("scheduler", "triggerer", "dag_processor"))


def _own_airflow(tmp_path) -> dict[str, str]:
    """A metadata DB and DAG folder of its own: the session's DB has unpaused DAGs this scheduler would run."""
    home, dags = tmp_path / "airflow", tmp_path / "dags"
    dags.mkdir()
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}"}
    home.mkdir()
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True,
                   timeout=300)
    return env


def _executor_workers(root: psutil.Process) -> list[psutil.Process]:
    """The LocalExecutor's worker processes: the scheduler's children (a task's own process, forked by a
    worker, carries the same title until it sets its own)."""
    scheduler = next(p for p in root.children(recursive=True) if "scheduler" in " ".join(p.cmdline()))
    return [p for p in scheduler.children() if "LocalExecutor" in p.name() or "LocalExecutor" in " ".join(p.cmdline())]


def test_every_component_listens_on_loopback_only(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    from local_airflow import parallelism

    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "local_airflow.py"), "--port", str(port)],
                            env=_own_airflow(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not _healthy(port):
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(1)
        assert _healthy(port), "Airflow did not become healthy"
        time.sleep(3)  # the scheduler's executor workers and any late listener
        sockets = _listening(psutil.Process(proc.pid))
        assert port in sockets
        assert {ip for ip in sockets.values()} <= LOOPBACK, sockets
        assert 8793 not in sockets and 8794 not in sockets
        assert 1 <= len(_executor_workers(psutil.Process(proc.pid))) <= parallelism()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    assert "Airflow is ready: http://127.0.0.1:" in out and f"{parallelism()} workers" in out
