"""`make ui`: Airflow's API server, scheduler, dag-processor and triggerer on the embedded defaults, reachable
from this machine only.

`airflow standalone` starts the scheduler's and the triggerer's log servers on every interface (8793, 8794)
and a LocalExecutor with 32 workers. On one host the API server reads task logs from the files, so the log
servers are not started at all; the API server listens on loopback; the executor gets as many workers as the
machine has cores (at least 2). Component logs go to $AIRFLOW_HOME/logs/components/.

    python scripts/local_airflow.py [--port 8080]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"
USER = "admin"
COMPONENTS = {
    "api-server": ["--host", HOST, "--workers", "1"],
    "scheduler": ["--skip-serve-logs"],
    "dag-processor": [],
    "triggerer": ["--skip-serve-logs"],
}
STOP_ORDER = ("scheduler", "triggerer", "dag-processor", "api-server")


def parallelism() -> int:
    return max(2, os.cpu_count() or 2)


def component_env(base: dict[str, str], port: int) -> dict[str, str]:
    """The settings `airflow standalone` would force, with loopback addresses and a parallelism that fits."""
    home = Path(base.get("AIRFLOW_HOME", Path.home() / "airflow"))
    url = f"http://{HOST}:{port}"
    return {
        **base,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism()),
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file(home)),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
    }


def passwords_file(home: Path) -> Path:
    return home / "simple_auth_manager_passwords.json.generated"


def start(env: dict[str, str], port: int) -> dict[str, subprocess.Popen]:
    logs = Path(env.get("AIRFLOW_HOME", ".")) / "logs" / "components"
    logs.mkdir(parents=True, exist_ok=True)
    processes = {}
    for name, extra in COMPONENTS.items():
        args = [sys.executable, "-m", "airflow", name, *extra]
        if name == "api-server":
            args += ["--port", str(port)]
        with (logs / f"{name}.log").open("ab") as log:
            processes[name] = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, start_new_session=True)
    print(f"component logs: {logs}/", flush=True)
    return processes


def wait_healthy(processes: dict[str, subprocess.Popen], port: int, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    wanted = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    while time.time() < deadline:
        dead = {n: p.returncode for n, p in processes.items() if p.poll() is not None}
        if dead:
            raise SystemExit(f"component(s) exited during start-up: {dead}; see their logs")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/api/v2/monitor/health", timeout=3) as resp:
                health = json.load(resp)
            if all((health.get(k) or {}).get("status") == "healthy" for k in wanted):
                return
        except (OSError, ValueError):
            pass
        time.sleep(1)
    raise SystemExit(f"Airflow was not healthy within {timeout:.0f} s; see the component logs")


def stop(processes: dict[str, subprocess.Popen]) -> None:
    for name in STOP_ORDER:
        proc = processes.get(name)
        if proc is not None and proc.poll() is None:
            proc.terminate()
    for name in STOP_ORDER:
        proc = processes.get(name)
        if proc is None:
            continue
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        try:  # whatever the component left (executor workers, task processes)
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("MLOPS_UI_PORT", "8080")))
    args = parser.parse_args(argv)
    env = component_env(dict(os.environ), args.port)
    processes = start(env, args.port)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        wait_healthy(processes, args.port)
        password = json.loads(passwords_file(Path(env["AIRFLOW_HOME"])).read_text()).get(USER, "?")
        print(f"Airflow is ready: http://{HOST}:{args.port}  user {USER}, password {password}  "
              f"(LocalExecutor, {env['AIRFLOW__CORE__PARALLELISM']} workers). Ctrl-C stops it.", flush=True)
        while all(p.poll() is None for p in processes.values()):
            time.sleep(1)
        dead = {n: p.returncode for n, p in processes.items() if p.poll() is not None}
        print(f"component(s) stopped: {dead}; stopping the others", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop(processes)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
