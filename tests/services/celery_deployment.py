"""A real Airflow deployment with the CeleryExecutor: the components of `airflow_deployment.Deployment`
(api-server, scheduler, dag-processor, triggerer on a PostgreSQL metadata DB of its own) plus two
`airflow celery worker` processes, Redis as the broker and the same PostgreSQL database as Celery's result
backend, as in production (the official Helm chart's Celery setup).

Isolation from anything else on the machine: a Redis database number that is empty when taken (flushed
again when done), a Celery queue named for this deployment (the operators' default queue, the only queue
its workers consume), and distinct Celery hostnames, pid files and log-server ports per worker.

Both workers run on this one machine, so each one reports a hostname of its own to Airflow
(`[core] hostname_callable` -> `worker_hostname`, which returns MLOPS_TEST_CELERY_WORKER): the task
instance's `hostname` then says which worker ran it, as it would with one worker per machine. Each worker
also has a lock folder of its own (MLOPS_LOCK_DIR), as on its own machine's disk: the promotion file lock
orders nothing across workers, so whatever keeps two workers apart is Airflow's doing.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from airflow_deployment import ROOT, Deployment, _stop_group, free_port

REDIS_HOST = os.environ.get("MLOPS_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("MLOPS_TEST_REDIS_PORT", "6379"))
WORKER_ENV = "MLOPS_TEST_CELERY_WORKER"
SERVICES = Path(__file__).resolve().parent
# No new work first, then the workers (a warm shutdown: nothing is running by then), the API server last.
STOP_ORDER = ("scheduler", "worker-a", "worker-b", "triggerer", "dag-processor", "api-server")


def worker_hostname() -> str:
    """`[core] hostname_callable` of the workers: the worker's own name (see the module docstring)."""
    return os.environ[WORKER_ENV]


# -- Redis -------------------------------------------------------------------------------------------------
def redis_problem() -> str | None:
    """Why the Celery broker cannot be used here, or None when it can."""
    try:
        import redis
    except ImportError as exc:
        return f"the redis client is not installed ({exc}); install requirements.txt"
    try:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis is not reachable at {REDIS_HOST}:{REDIS_PORT} ({exc})"
    return None


def take_redis_db() -> int:
    """An empty Redis database other than 0 (0 is everybody's default)."""
    import redis

    numbers = list(range(1, 16))
    random.shuffle(numbers)
    for number in numbers:
        if redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number).dbsize() == 0:
            return number
    raise RuntimeError(f"no empty Redis database among 1-15 at {REDIS_HOST}:{REDIS_PORT}; flush one that is "
                       "not in use")


def flush_redis_db(number: int) -> int:
    """Empties the database; returns how many keys are left (0)."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number)
    client.flushdb()
    return client.dbsize()


# -- The deployment ----------------------------------------------------------------------------------------
@dataclass
class CeleryDeployment(Deployment):
    redis_db: int = 1
    compute_dir: Path | None = None  # a test pool catalogue (MLOPS_COMPUTE_DIR)
    concurrency: int = 2  # per worker
    queue: str = field(default_factory=lambda: f"mlops-test-{secrets.token_hex(4)}")
    workers: tuple[str, ...] = ("worker-a", "worker-b")
    trigger_log_port: int = field(default_factory=free_port)

    @property
    def broker_url(self) -> str:
        return f"redis://{REDIS_HOST}:{REDIS_PORT}/{self.redis_db}"

    @property
    def result_backend(self) -> str:
        # The driver named: SQLAlchemy 2's plain postgresql:// means psycopg 3, which Airflow does not install.
        return f"db+{self.sql_alchemy_conn}"

    def worker_name(self, worker: str) -> str:
        """The Celery hostname and the Airflow task-instance hostname of one worker."""
        return f"{worker}-{self.queue.rsplit('-', 1)[1]}"

    def lock_dir(self, worker: str) -> Path:
        """The worker's own MLOPS_LOCK_DIR (see the module docstring)."""
        return self.root / "locks" / worker

    def env(self) -> dict[str, str]:
        env = {
            **super().env(),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": self.result_backend,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.concurrency),
            "AIRFLOW__CELERY__OPERATION_TIMEOUT": "10",  # sending a task on a busy 2-core machine
            "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            # Not the default ports: another deployment on this machine may hold them.
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.trigger_log_port),
        }
        if self.compute_dir is not None:
            env["MLOPS_COMPUTE_DIR"] = str(self.compute_dir)
        return env

    def worker_env(self, worker: str) -> dict[str, str]:
        env = self.env()
        env.update({
            WORKER_ENV: self.worker_name(worker),
            "MLOPS_LOCK_DIR": str(self.lock_dir(worker)),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "celery_deployment.worker_hostname",
            "PYTHONPATH": os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(SERVICES)])),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        })
        return env

    def start(self) -> None:
        super().start()
        for worker in self.workers:
            args = ["-m", "airflow", "celery", "worker", "--queues", self.queue,
                    "--concurrency", str(self.concurrency), "--celery-hostname", self.worker_name(worker),
                    "--pid", str(self.airflow_home / f"{worker}.pid"), "--without-gossip"]
            self._spawn(worker, args, self.worker_env(worker))

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = (self.logs_dir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen([sys.executable, *args], env=env, cwd=self.root, stdout=log,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                start_new_session=True)
        log.close()

    def wait_for_workers(self, timeout: float = 180) -> dict[str, list[str]]:
        """Both workers answer on the broker and consume this deployment's queue: name -> queues."""
        deadline = time.time() + timeout
        script = ("from airflow.providers.celery.executors.celery_executor import app; import json; "
                  "print(json.dumps({k: [q['name'] for q in v] "
                  "for k, v in (app.control.inspect(timeout=3).active_queues() or {}).items()}))")
        found: dict[str, list[str]] = {}
        while time.time() < deadline:
            dead = {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}
            if dead:
                raise RuntimeError(f"component(s) exited: {dead}\n{self.log_tails()}")
            result = subprocess.run([sys.executable, "-c", script], env=self.env(), cwd=self.root,
                                    capture_output=True, text=True, timeout=60)
            if result.returncode == 0 and result.stdout.strip():
                found = json.loads(result.stdout.strip().splitlines()[-1])
                wanted = {f"celery@{self.worker_name(w)}" for w in self.workers}  # Celery's node names
                if wanted <= set(found) and all(found[w] == [self.queue] for w in wanted):
                    self.timings["workers ready"] = time.time() - (deadline - timeout)
                    return found
            time.sleep(2)
        raise RuntimeError(f"the Celery workers did not come up in {timeout}s (seen: {found})\n{self.log_tails()}")

    def stop(self, timeout: float = 60) -> dict[str, str]:
        if self.stopped is not None:
            return self.stopped
        started = time.perf_counter()
        outcome = {name: _stop_group(self.processes[name], timeout) for name in STOP_ORDER if name in self.processes}
        self.stopped = outcome
        self.timings["stop"] = time.perf_counter() - started
        return outcome


__all__ = ["CeleryDeployment", "ROOT", "flush_redis_db", "redis_problem", "take_redis_db", "worker_hostname"]
