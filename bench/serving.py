"""Online serving: the platform's endpoint against the same model version started by hand with `mlflow models
serve`, and what a client sees while a new version rolls out and while it is rolled back.

    python bench/serving.py [--requests 3000] [--concurrency 1 8 32] [--warmup 200]

Everything runs on a temporary MLOPS_HOME (removed at the end): churn sample data, two churn versions
trained with run_training (different logical dates and C), v1 deployed through the rollout steps
(resolve, start, smoke, bake, switch, record, retire) with one replica.

1. Latency: v1 behind the platform's endpoint (the supervisor's shared socket, one `mlops.serving.worker`
   process) and v1 started by hand, `mlflow models serve -m <the downloaded model dir> --env-manager local`
   (one uvicorn process), both load-tested with the same one-row request body from threads that each hold
   one keep-alive connection (http.client), `--requests` requests per concurrency level. Which endpoint goes
   first alternates per level. Printed: requests/s, p50, p99 and failed requests per endpoint and level, and
   the ratio platform p50 / hand-started p50 (the target is <= 1.05).
2. Rollout timeline: v1 -> v2 through every step while a client loops requests against the stable endpoint
   (one keep-alive requests.Session, as mlops.serving.endpoint calls), then the rollback (v1 deployed again,
   the same steps) the same way. Printed: each step's seconds from the rollout record, the requests sent,
   the failed ones (the target is 0) and which versions answered (x-mlops-model-version).

Figures only: nothing here passes or fails.
"""

from __future__ import annotations

import os

for _var, _value in (("MLFLOW_DISABLE_TELEMETRY", "true"), ("DO_NOT_TRACK", "true"),
                     ("GX_ANALYTICS_ENABLED", "false")):
    os.environ.setdefault(_var, _value)

import argparse  # noqa: E402
import collections  # noqa: E402
import http.client  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "include")]

import numpy as np  # noqa: E402

from mlops import synthetic  # noqa: E402
from mlops.serving import control, endpoint, rollout  # noqa: E402
from mlops.serving.local import LocalBackend  # noqa: E402
from mlops.serving.records import Rollout, RolloutLog  # noqa: E402
from mlops.serving.status import endpoint_of  # noqa: E402
from mlops.serving.worker import VERSION_HEADER  # noqa: E402
from mlops.settings import Settings, get_settings  # noqa: E402
from mlops.spec import ModelSpec, load_spec  # noqa: E402
from mlops.train import RunContext, run_training  # noqa: E402

MODEL = "churn"
DATA_DAYS = (date(2025, 12, 1), date(2026, 1, 20))
# (logical date, hyperparameter overrides) of v1 and v2
TRAININGS = (("2026-01-15T00:00:00+00:00", {}), ("2026-01-19T00:00:00+00:00", {"C": 0.5}))
# Variables that would point the settings outside the temporary home
STATE_VARIABLES = ("MLFLOW_TRACKING_URI", "MLOPS_DATA_ROOT", "MLOPS_ARTIFACT_ROOT", "MLOPS_AUDIT_ROOT",
                   "MLOPS_LOCK_DIR", "MLOPS_REPORTS_DIR", "MLOPS_SERVING_DIR")
HEADERS = {"Content-Type": "application/json"}
READY_TIMEOUT_S = 120
REQUEST_TIMEOUT_S = 30
PER_CONNECTION_WARMUP = 3  # requests each load thread sends on its new connection before the clock starts


# --- set-up ---------------------------------------------------------------------------------------------------

def isolated_home() -> Path:
    """A temporary MLOPS_HOME, so the bench neither reads nor changes the user's models, data or servers; the
    subprocesses (supervisor, model servers, mlflow) find the project's code through PYTHONPATH."""
    home = Path(tempfile.mkdtemp(prefix="mlops-bench-serving-"))
    for name in STATE_VARIABLES:
        os.environ.pop(name, None)
    os.environ["MLOPS_HOME"] = str(home)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "include"), os.environ.get("PYTHONPATH")]))
    return home


def churn_spec(settings: Settings) -> ModelSpec:
    """include/models/churn.yaml with one replica, so each side of the comparison is one server process."""
    spec = load_spec(ROOT / "include" / "models" / "churn.yaml", settings.expectations_dir)
    assert spec.serving is not None, "churn.yaml has no serving section"
    return spec.model_copy(update={"serving": spec.serving.model_copy(update={"replicas": 1})})


def train_versions(settings: Settings, spec: ModelSpec) -> list[str]:
    """Sample data and two registered versions (different windows and C), as the training DAG makes them."""
    synthetic.generate(MODEL, *DATA_DAYS, settings.data_root)
    versions = []
    for i, (logical_date, overrides) in enumerate(TRAININGS, start=1):
        ctx = RunContext(dag_id=f"{MODEL}__train", run_id=f"bench_{i}", data_interval_end=logical_date)
        versions.append(str(run_training(spec, ctx, overrides, settings)["model_version"]))
    return versions


def deploy(settings: Settings, spec: ModelSpec, version: str, actor: str) -> Rollout:
    """Every rollout step in order, as the deploy DAG's tasks run them; a failed step is rolled back and ends
    the bench (the stable version keeps serving). A distinct actor per call gives each run its own record."""
    plan = rollout.resolve(settings, spec, version, actor, "bench/serving.py")
    try:
        handle = rollout.start(settings, spec, plan.rollout_id)
        rollout.smoke(settings, spec, plan.rollout_id, handle["url"])
        rollout.bake(settings, spec, plan.rollout_id, handle["url"])
        rollout.switch(settings, spec, plan.rollout_id)
        rollout.record(settings, spec, plan.rollout_id)
        rollout.retire(settings, spec, plan.rollout_id)
    except rollout.DeployError as exc:
        rollout.roll_back(settings, spec, plan.rollout_id)
        raise SystemExit(f"the rollout of v{version} failed: {exc}") from None
    latest = RolloutLog(settings.audit_root, spec.name).latest()
    assert latest is not None and latest.id == plan.rollout_id
    return latest


def request_body(settings: Settings, spec: ModelSpec, version: str) -> bytes:
    """One row of the version's holdout (the smoke sample), as one online request: the same bytes for both
    endpoints and every request."""
    sample = rollout.smoke_sample(settings, spec, version)
    return endpoint.frame_body(sample[list(spec.dataset.features)].iloc[[0]])


# --- the server started by hand --------------------------------------------------------------------------------

def free_port() -> int:
    """A loopback port nothing listens on now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_by_hand(model_dir: str, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`mlflow models serve` as a user runs it from the project's virtual environment (its bin on PATH, so
    mlflow's `uvicorn` command resolves), in its own session so it can be stopped with its children."""
    port = free_port()
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])}
    argv = [str(bin_dir / "mlflow"), "models", "serve", "-m", model_dir, "--env-manager", "local",
            "-h", "127.0.0.1", "-p", str(port)]
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def wait_ping(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> float:
    """Seconds until `url/ping` answers 200; fails at once when the process ends, with the end of its log."""
    import requests

    start = time.monotonic()
    while time.monotonic() - start < READY_TIMEOUT_S:
        try:
            if requests.get(f"{url}/ping", timeout=1).status_code == 200:
                return time.monotonic() - start
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
    raise SystemExit(f"`mlflow models serve` did not answer /ping (exit code {proc.poll()}); its log:\n{tail}")


def stop_by_hand(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM to the server's session (the mlflow CLI and its uvicorn), SIGKILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# --- load ------------------------------------------------------------------------------------------------------

@dataclass
class Level:
    endpoint: str
    concurrency: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failed: int = 0
    first_error: str = ""

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def ms(self, q: float) -> float:
        return float(np.percentile(np.asarray(self.latencies) * 1000, q)) if self.latencies else float("nan")


def _post(conn: http.client.HTTPConnection, body: bytes) -> str:
    """One request on the thread's keep-alive connection; '' when it got a 200 answer, else why not. A broken
    connection is closed, so the next request opens a new one (as a pooled client would)."""
    try:
        conn.request("POST", "/invocations", body, HEADERS)
        response = conn.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        return f"{type(exc).__name__}: {exc}"
    return "" if response.status == 200 else f"HTTP {response.status}"


def load(name: str, url: str, body: bytes, concurrency: int, requests: int) -> Level:
    """`requests` requests from `concurrency` threads, each on its own connection (opened and warmed before
    the clock starts), taking turns from one shared count so all threads stop together."""
    parts = urlsplit(url)
    level, lock, tickets = Level(name, concurrency), threading.Lock(), iter(range(requests))
    ready = threading.Barrier(concurrency + 1)

    def worker() -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=REQUEST_TIMEOUT_S)
        for _ in range(PER_CONNECTION_WARMUP):
            _post(conn, body)
        ready.wait()
        mine: list[float] = []
        while True:
            with lock:
                if next(tickets, None) is None:
                    break
            start = time.perf_counter()
            error = _post(conn, body)
            if error:
                with lock:
                    level.failed += 1
                    level.first_error = level.first_error or error
            else:
                mine.append(time.perf_counter() - start)
        conn.close()
        with lock:
            level.latencies += mine

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    ready.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    level.seconds = time.perf_counter() - start
    return level


def compare(endpoints: dict[str, str], body: bytes, levels: list[int], requests: int, warmup: int) -> None:
    """Both endpoints at each concurrency, the first one alternating per level; the table and the p50 ratios."""
    for name, url in endpoints.items():
        load(name, url, body, 1, warmup)  # the first requests of a fresh process are slower: not measured
    names = list(endpoints)
    results: dict[tuple[str, int], Level] = {}
    ran: dict[tuple[str, int], str] = {}
    for i, concurrency in enumerate(levels):
        for turn, name in enumerate(names if i % 2 == 0 else names[::-1]):
            results[name, concurrency] = load(name, endpoints[name], body, concurrency, requests)
            ran[name, concurrency] = ("first", "second")[turn]
    print(f"\nlatency, {requests} one-row requests per endpoint and level (after {warmup} warm-up requests each; "
          f"first endpoint alternating per level; {os.cpu_count()} CPUs shared by the clients and the servers):")
    print(f"  {'endpoint':<12} {'concurrency':>11} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7}  ran")
    for concurrency in levels:
        for name in names:
            r = results[name, concurrency]
            failure = f"; first failure: {r.first_error}" if r.failed else ""
            print(f"  {name:<12} {concurrency:>11} {r.per_second:>11.0f} {r.ms(50):>8.2f} {r.ms(99):>8.2f} "
                  f"{r.failed:>7}  {ran[name, concurrency]}{failure}")
    platform, by_hand = names
    for q, label in ((50, "p50 (target <= 1.05)"), (99, "p99 (figure only)")):
        ratios = ", ".join(f"{c}: {results[platform, c].ms(q) / results[by_hand, c].ms(q):.3f}" for c in levels)
        print(f"  ratio {platform} / {by_hand} {label}, per concurrency: {ratios}")


# --- the rollout timeline --------------------------------------------------------------------------------------

class LoopingClient:
    """One caller sending requests back to back on one keep-alive session (mlops.serving.endpoint's client) for
    as long as the `with` block lasts: what a real client of the stable endpoint sees during a rollout."""

    def __init__(self, url: str, body: bytes, timeout: float):
        self.url, self.body, self.timeout = url, body, timeout
        self.sent, self.failed, self.errors = 0, 0, collections.Counter[str]()
        self.versions: dict[str, list[float]] = {}  # version -> [answers, first and last second it answered]
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        session = endpoint.session()
        while not self._stop.is_set():
            answer = endpoint.invoke(session, self.url, self.body, self.timeout)
            at = time.monotonic() - self.started
            self.sent += 1
            if not answer.ok:
                self.failed += 1
                self.errors[endpoint.describe(answer)[:160]] += 1
                continue
            self.latencies.append(answer.seconds)
            seen = self.versions.setdefault(answer.version or "?", [0, at, at])
            seen[0] += 1
            seen[2] = at
        session.close()

    def __enter__(self) -> LoopingClient:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.seconds = time.monotonic() - self.started


def timeline(settings: Settings, spec: ModelSpec, version: str, actor: str, body: bytes, title: str) -> None:
    """Deploy `version` while a client calls the stable endpoint; the steps' times, and what the client saw."""
    url = endpoint_of(settings, spec)
    assert url is not None and spec.serving is not None, "nothing serves: deploy a version first"
    with LoopingClient(url, body, spec.serving.timeouts.request_seconds) as client:
        record = deploy(settings, spec, version, actor)
    print(f"\n{title}: v{record.from_version} -> v{record.to_version} at {url}, {client.seconds:.1f} s in all; "
          f"verdict {record.verdict}")
    for step in record.steps:
        print(f"  {step['step']:<8} {step['seconds']:>7.2f} s  {step['detail']}")
    ms = np.asarray(client.latencies) * 1000 if client.latencies else np.asarray([float("nan")])
    print(f"  client: {client.sent} requests sent during the rollout, {client.failed} failed (target 0); "
          f"latency p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms, max {ms.max():.1f} ms")
    for v, (answers, first, last) in sorted(client.versions.items()):
        print(f"  answered by v{v} ({VERSION_HEADER}): {int(answers)} requests, from {first:.1f} s to {last:.1f} s")
    for error, count in client.errors.most_common(5):
        print(f"  failure x{count}: {error}")


# --- main ------------------------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=3000,
                   help="requests per endpoint and concurrency level (3,000: about 2.5 min in all on 2 cores)")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--warmup", type=int, default=200, help="unmeasured requests to each endpoint first")
    a = p.parse_args(argv)
    home = isolated_home()
    settings = get_settings()
    by_hand: subprocess.Popen[bytes] | None = None
    try:
        start = time.monotonic()
        spec = churn_spec(settings)
        v1, v2 = train_versions(settings, spec)
        print(f"trained {MODEL} v{v1} and v{v2} in {time.monotonic() - start:.1f} s (MLOPS_HOME {home})")
        first = deploy(settings, spec, v1, f"bench-{os.getpid()}-1")
        platform = endpoint_of(settings, spec)
        assert platform is not None
        print(f"deployed v{v1} at {platform}: {first.timeline()}")
        model_dir = LocalBackend(settings, spec).model_path(v1)  # already downloaded by the deploy
        log_path = home / "mlflow-models-serve.log"
        by_hand, hand_url = serve_by_hand(model_dir, log_path)
        print(f"`mlflow models serve -m {model_dir} --env-manager local` answered /ping at {hand_url} after "
              f"{wait_ping(hand_url, by_hand, log_path):.1f} s")
        body = request_body(settings, spec, v1)
        compare({"platform": platform, "by hand": hand_url}, body, a.concurrency, a.requests, a.warmup)
        stop_by_hand(by_hand)  # the rollouts get the machine to themselves
        timeline(settings, spec, v2, f"bench-{os.getpid()}-2", body, "rollout")
        timeline(settings, spec, v1, f"bench-{os.getpid()}-3", body, "rollback")
        print(f"\nthe whole bench: {time.monotonic() - start:.0f} s")
    finally:
        stop_by_hand(by_hand)
        control.stop(Path(settings.serving.dir))
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
