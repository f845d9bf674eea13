"""One real Airflow deployment (api-server, scheduler, dag-processor, triggerer on PostgreSQL) for every
test marked `services`, started once per session; the tests drive it through the REST API v2 (and the
trigger-form test in tests/ui through the browser). A plugin (tests/conftest.py loads it), not a
conftest: its fixtures must reach tests outside this folder, and a second deployment would cost minutes.

Its models are copies of the example specs, written for this deployment so that the scheduler never
starts a run on its own: every DAG starts paused until a test unpauses it, and once unpaused it has no
time schedule (a manual run with a logical date and an asset event still start one). The backfilled model
keeps its daily schedule but starts in 2099: nothing is due, and a backfill ignores the start date (a
manual run before it would get no task instances). The emulated Kubernetes API runs in this process for
the whole session, so the triggerer and the workers of the deployment can talk to it.

To keep the suite's wall time small on a 2-core machine, the runs are started up front: each selected
test module may define `start(api, airflow) -> dict` (called once, right after the deployment is ready,
for every selected module) and `watch(api, state) -> bool` (called about every second from a background
thread with that dict, until it returns False), then its test waits for what it started. The runs overlap
(the scheduler and the workers idle a lot between tasks), and the longest chain (monitor -> retraining)
runs first.

Without PostgreSQL the tests skip with the reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import pytest
import yaml

from airflow_deployment import (
    REPORT,
    Deployment,
    create_database,
    database_exists,
    drop_database,
    free_port,
    postgres_problem,
    require,
)
from helpers import MODELS, ROOT

CHURN_DATA = (date(2025, 12, 1), date(2026, 1, 20))
DEMAND_DATA = (date(2025, 11, 15), date(2026, 1, 27))
DEMAND_DRIFT_FROM = date(2026, 1, 17)  # as in the laptop demo
UNSCHEDULED = {"schedule": None, "scoring": {"schedule": None}, "monitoring": {"schedule": None}}

# model name -> (example spec it copies, changes). One model per test: tests do not share a registry entry.
SERVICE_MODELS = {
    "churn": ("churn", UNSCHEDULED),
    "churn_backfill": ("churn", {**UNSCHEDULED, "schedule": "@daily", "start_date": "2099-01-01"}),
    "demand": ("demand", UNSCHEDULED),  # retrained when its monitor asks, as a watched model is deployed
    "churn_pod": ("churn", {**UNSCHEDULED,
                            "compute": {"backend": "kubernetes", "pool": "cpu", "cpu": "1", "memory": "2Gi"}}),
    "churn_form": ("churn", UNSCHEDULED),  # triggered from its forms in the browser (tests/ui)
    # Promotions wait for a person: answered through the REST API (test_approvals.py)
    # the first promotion request is answered within seconds, the second one times out (rejected) after a minute
    "churn_gate": ("churn", {**UNSCHEDULED, "promotion": {"approval": {
        "users": ["mlops-approver"], "roles": ["op"], "timeout_minutes": 1}},
        "serving": {"canary": {"requests": 40}, "approval": {"users": ["mlops-approver"], "roles": ["op"]}}}),
}
# Test modules in the order they run: the browser's forms first (their runs are started one after another
# while every other test's runs go on), then the longest chain, the shutdown last, anything else between.
ORDER = ["test_trigger_forms.py", "test_monitor_retrains.py", "test_approvals.py", "test_backfill.py",
         "test_kubernetes_deferral.py", "test_training_run.py"]
LAST = ["test_shutdown.py"]
TIMINGS: dict[str, float] = {}
_STATE: dict = {"failed": False}


def dag_ids() -> list[str]:
    return [f"{name}__{kind}" for name in SERVICE_MODELS for kind in ("train", "score", "monitor")]


def write_specs(models_dir: Path) -> None:
    models_dir.mkdir(parents=True, exist_ok=True)
    for name, (example, changes) in SERVICE_MODELS.items():
        spec = yaml.safe_load((MODELS / f"{example}.yaml").read_text())
        spec["name"] = name
        for key, value in changes.items():
            if isinstance(value, dict):
                spec.setdefault(key, {}).update(value)
            else:
                spec[key] = value
        (models_dir / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def write_data(data_root: Path) -> None:
    from mlops import synthetic

    synthetic.generate("churn", *CHURN_DATA, data_root)
    synthetic.generate("demand", *DEMAND_DATA, data_root, drift_from=DEMAND_DRIFT_FROM)


def _emulator_env(deployment: Deployment) -> dict[str, str]:
    """What a training pod's container starts with (the 'image'): a plain environment with telemetry off,
    not the test process's; the pod spec adds the data root and the tracking Secret."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    return {**{k: os.environ[k] for k in keep if k in os.environ}, "MLOPS_HOME": str(deployment.mlops_home),
            "MLOPS_PROJECT_ROOT": str(ROOT),
            "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False", "SCARF_ANALYTICS": "false", "DO_NOT_TRACK": "true",
            "MLFLOW_DISABLE_TELEMETRY": "true", "GX_ANALYTICS_ENABLED": "false", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="session")
def airflow():
    """The running deployment (`airflow_deployment.Deployment`)."""
    require("services tests need PostgreSQL", [postgres_problem()])
    from k8s_e2e import NODES, add_tracking_secret
    from k8s_emulator import Cluster

    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="mlops-services-"))
    db_name = f"mlops_services_{secrets.token_hex(4)}"
    create_database(db_name)
    deployment = Deployment(root=root, db_name=db_name, port=free_port())
    _STATE["deployment"] = deployment
    try:
        write_specs(deployment.models_dir)
        write_data(deployment.data_root)
        TIMINGS["specs + sample data"] = time.perf_counter() - started
        with Cluster(root / "kubeconfig", executables={"python": sys.executable}, namespace="mlops",
                     nodes=NODES) as cluster:
            cluster.agent.host_env = lambda: _emulator_env(deployment)
            add_tracking_secret(cluster, deployment.tracking_uri)
            deployment.extra_env["AIRFLOW_CONN_KUBERNETES_DEFAULT"] = json.dumps({
                "conn_type": "kubernetes",
                "extra": {"kube_config_path": str(cluster.kubeconfig), "in_cluster": False, "namespace": "mlops"}})
            deployment.cluster = cluster
            try:
                deployment.prepare()
                deployment.start()
                deployment.wait_until_ready(dag_ids())
                TIMINGS["deployment up (DB, migrate, components, DAGs parsed)"] = time.perf_counter() - started
                yield deployment
            finally:
                observer = _STATE.pop("observer", None)
                if observer is not None:
                    observer.stop()
                deployment.stop()
                from mlops.serving import control

                control.stop(deployment.mlops_home / "serving")  # the model servers a deploy run started
    finally:
        drop_started = time.perf_counter()
        try:
            drop_database(db_name)
            assert not database_exists(db_name), f"database {db_name} is still there"
        finally:
            TIMINGS["teardown (drop DB)"] = time.perf_counter() - drop_started
            for name, seconds in deployment.timings.items():
                TIMINGS[f"deployment: {name}"] = seconds
            if _STATE["failed"]:
                _STATE["kept"] = root  # component logs, task logs, MLflow store: for whoever debugs it
            else:
                shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def api(airflow):
    return airflow.client()


class Observer(threading.Thread):
    """Calls each module's `watch(api, state)` about every second until it returns False."""

    def __init__(self, api, watchers: dict):
        super().__init__(daemon=True, name="services-observer")
        self.api, self.watchers = api, dict(watchers)
        self.halt = threading.Event()
        self.errors: list[str] = []

    def run(self):
        while self.watchers and not self.halt.is_set():
            for name, (watch, state) in list(self.watchers.items()):
                try:
                    if watch(self.api, state) is False:
                        del self.watchers[name]
                except Exception as exc:  # noqa: BLE001 - reported by the test that reads the state
                    state.setdefault("watch_errors", []).append(repr(exc))
            self.halt.wait(1.0)

    def stop(self):
        self.halt.set()
        self.join(timeout=10)


@pytest.fixture(scope="session")
def started(request, airflow, api) -> dict[str, dict]:
    """module name -> what its `start(api, airflow)` returned, for every selected test module."""
    from airflow_deployment import ApiClient

    modules = []
    for item in request.session.items:
        if "services" in item.keywords and item.module not in modules:
            modules.append(item.module)
    states, watchers = {}, {}
    began = time.perf_counter()
    for module in modules:
        if hasattr(module, "start"):
            states[module.__name__] = module.start(api, airflow)
            if hasattr(module, "watch"):
                watchers[module.__name__] = (module.watch, states[module.__name__])
    TIMINGS["starting every selected test's runs"] = time.perf_counter() - began
    if watchers:
        observer = Observer(ApiClient(airflow.url, airflow.token()), watchers)
        _STATE["observer"] = observer
        observer.start()
    return states


def pytest_collection_modifyitems(config, items):
    """The longest chain first; the shutdown test stops the shared deployment, so it runs last. The tests
    marked `services` outside this folder join the block where the first one is, so the deployment is up
    for them and stopped before the rest of the session."""
    def rank(item):
        name = item.path.name
        if name in ORDER:
            return ORDER.index(name)
        return len(ORDER) + 1 + LAST.index(name) if name in LAST else len(ORDER)

    services = [i for i in items if i.get_closest_marker("services")]
    if services:
        first = items.index(services[0])
        others = [i for i in items if not i.get_closest_marker("services")]
        items[:] = others[:first] + sorted(services, key=rank) + others[first:]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if "services" not in item.keywords:
        return
    if report.when == "call":
        TIMINGS[f"test: {item.name}"] = call.duration
    deployment = _STATE.get("deployment")
    if report.failed:
        _STATE["failed"] = True
        if deployment is not None and deployment.logs_dir.exists():
            report.sections.append(("Airflow component logs (tails)", deployment.log_tails()))


def pytest_terminal_summary(terminalreporter):
    if not TIMINGS:
        return
    terminalreporter.section("services suite: where the time went")
    for name, seconds in TIMINGS.items():
        terminalreporter.write_line(f"{seconds:8.1f}s  {name}")
    tests = sum(v for k, v in TIMINGS.items() if k.startswith("test: "))
    setup = TIMINGS.get("deployment up (DB, migrate, components, DAGs parsed)", 0.0)
    terminalreporter.write_line(f"{setup + tests + TIMINGS.get('teardown (drop DB)', 0.0):8.1f}s  total")
    for line in REPORT:
        terminalreporter.write_line(line)
    if "kept" in _STATE:
        terminalreporter.write_line(f"a test failed: the deployment's files (component and task logs, MLflow "
                                    f"store, audit log) are kept in {_STATE['kept']}")
