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


def test_every_component_listens_on_loopback_only(airflow_db, tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    from local_airflow import parallelism

    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "local_airflow.py"), "--port", str(port)],
                            env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
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
        workers = [p for p in psutil.Process(proc.pid).children(recursive=True)
                   if "LocalExecutor" in " ".join(p.cmdline()) or p.name().startswith("airflow worker")]
        assert len(workers) <= parallelism()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    assert "Airflow is ready: http://127.0.0.1:" in out and f"{parallelism()} workers" in out
