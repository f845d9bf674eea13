"""The local backend: a model's versions as MLflow scoring server processes under the supervisor, on this
machine's loopback. Blue/green on one stable address: the stable version's processes listen on the model's
shared socket; a candidate starts on a private port (readiness, smoke test, shadow bake); the switch starts
the candidate's replicas on the shared socket beside the stable ones, and retiring the old version drains
them (SIGTERM, uvicorn's graceful shutdown) while the new ones take every new connection."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from mlops.serving import control, endpoint
from mlops.serving.supervisor import log_tail
from mlops.settings import Settings
from mlops.spec import ModelSpec

# What a server process needs from the deploying process's environment to load a model like the trainer did.
PASSED_ENV = ("PYTHONPATH", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "MLOPS_TRAINER_PACKAGES")


class LocalBackend:
    name = "local"

    def __init__(self, settings: Settings, spec: ModelSpec):
        assert spec.serving is not None, f"{spec.name} has no serving section"
        self.settings, self.spec, self.serving = settings, spec, spec.serving
        self.root = Path(settings.serving.dir)
        self.supervisor = control.ensure(self.root, settings.serving.host)

    # --- what serves ------------------------------------------------------------------------------------
    def _processes(self) -> list[dict[str, Any]]:
        slot = self.supervisor.model(self.spec.name)
        return list(slot["processes"]) if slot else []

    def endpoint(self) -> str | None:
        slot = self.supervisor.model(self.spec.name)
        return str(slot["url"]) if slot else None

    def serving_processes(self) -> list[dict[str, Any]]:
        """The processes on the shared socket (those not told to stop)."""
        return [p for p in self._processes() if p["role"] == "stable" and not p["stopping"]]

    def serving_versions(self) -> list[str]:
        return sorted({p["version"] for p in self.serving_processes() if p["alive"]})

    def status(self) -> dict[str, Any]:
        live = [p for p in self.serving_processes() if p["alive"]]
        ready = sum(1 for p in live if endpoint.healthy(p["private_url"], timeout=1))
        return {"backend": self.name, "endpoint": self.endpoint(), "versions": self.serving_versions(),
                "replicas": self.serving.replicas, "replicas_ready": ready}

    # --- the model's files ------------------------------------------------------------------------------
    def model_path(self, version: str) -> str:
        """The version's MLflow model, downloaded once under the serving folder (servers load local files)."""
        import mlflow

        from mlops import tracking

        target = self.root / "models" / self.spec.name / f"v{version}"
        if (target / "MLmodel").is_file():
            return str(target)
        tracking.client(self.settings)
        staging = target.with_name(f".{target.name}.{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{self.spec.name}/{version}",
                                                    dst_path=str(staging))
        found = Path(local)
        found = found if (found / "MLmodel").is_file() else next(p.parent for p in staging.rglob("MLmodel"))
        if target.exists():
            shutil.rmtree(staging, ignore_errors=True)
        else:
            found.rename(target)
            shutil.rmtree(staging, ignore_errors=True)
        return str(target)

    # --- rollout steps ------------------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        env["MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT"] = str(int(max(1, self.serving.timeouts.request_seconds)))
        if self.serving.gpus == 0:
            env["CUDA_VISIBLE_DEVICES"] = ""  # CPU serving stays off the workstation's GPUs
        return env

    def _start(self, version: str, role: str) -> dict[str, Any]:
        return self.supervisor.start(self.spec.name, version, self.model_path(version), role, self._env(),
                                     graceful_seconds=self.serving.timeouts.drain_seconds)

    def _why_gone(self, pid: int) -> str | None:
        proc = next((p for p in self._processes() if p["pid"] == pid), None)
        if proc is None:
            return "its process is gone (stopped by someone else)"
        if proc["alive"]:
            return None
        return endpoint.exit_reason(int(proc["exit_code"]), log_tail(Path(proc["log"])))

    def _wait(self, proc: dict[str, Any], what: str) -> float:
        return endpoint.wait_ready(proc["private_url"], self.serving.timeouts.ready_seconds,
                                   lambda: self._why_gone(int(proc["pid"])), what)

    def start_candidate(self, version: str) -> dict[str, Any]:
        """Start the version on a private port and wait until it answers; the stable version is untouched."""
        self.abort(version)  # leftovers of an earlier try of this rollout
        proc = self._start(version, "candidate")
        handle = {"version": version, "pids": [proc["pid"]], "url": proc["private_url"]}
        try:
            handle["ready_seconds"] = self._wait(proc, f"{self.spec.name} v{version}")
        except endpoint.NotReady:
            self.abort(version)
            raise
        return handle

    def switch(self, version: str) -> dict[str, Any]:
        """The version's replicas on the shared socket, each ready, beside the old version's processes."""
        started = []
        try:
            for i in range(self.serving.replicas):
                proc = self._start(version, "stable")
                started.append(proc)
                self._wait(proc, f"{self.spec.name} v{version} (replica {i + 1} of {self.serving.replicas})")
        except endpoint.NotReady:
            self.supervisor.stop(self.spec.name, [p["pid"] for p in started], 0)
            raise
        return {"version": version, "pids": [p["pid"] for p in started], "urls": [p["private_url"] for p in started],
                "endpoint": self.endpoint()}

    def retire(self, keep_version: str) -> list[str]:
        """Drain and stop every process but the serving ones of `keep_version` (old versions, the candidate's
        private process). Returns the versions retired."""
        procs = self._processes()
        old = [p for p in procs if not (p["role"] == "stable" and p["version"] == keep_version)]
        if old:
            self.supervisor.stop(self.spec.name, [p["pid"] for p in old], self.serving.timeouts.drain_seconds)
        return sorted({p["version"] for p in old if p["role"] == "stable"})

    def abort(self, version: str) -> list[int]:
        """Stop every process of `version` (a rollout's candidate, and its replicas if the switch had begun);
        the other versions' processes keep serving."""
        doomed = [p for p in self._processes() if p["version"] == version]
        if doomed:
            self.supervisor.stop(self.spec.name, [p["pid"] for p in doomed], 0)
        return [p["pid"] for p in doomed]

    def wait_gone(self, pids: list[int], timeout_s: float = 10) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(p["pid"] in pids for p in self._processes()):
            time.sleep(0.1)


def restore(settings: Settings, spec: ModelSpec) -> str:
    """Start the deployed version's replicas (after a restart of the machine or `make serve`); the version
    passed its gates when it was deployed."""
    from mlops.serving.records import deployed_version

    assert spec.serving is not None
    version = deployed_version(settings, spec)
    if version is None:
        return f"{spec.name}: nothing deployed yet (trigger {spec.deploy_dag_id})"
    backend = LocalBackend(settings, spec)
    if version not in backend.serving_versions():
        backend.switch(version)
    return f"{spec.name}: v{version} serves at {backend.endpoint()} ({spec.serving.replicas} replica(s))"
