"""The local backend: a model's versions as MLflow scoring server processes under the supervisor, on this
machine's loopback. Blue/green on one stable address: the stable version's processes listen on the model's
shared socket; a candidate starts on a private port (readiness, smoke test, shadow bake); the switch starts
the candidate's replicas on the shared socket beside the stable ones, and retiring the old version drains
them (SIGTERM, uvicorn's graceful shutdown) while the new ones take every new connection."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from mlops.serving import control, endpoint
from mlops.serving.supervisor import log_tail, serving
from mlops.settings import Settings
from mlops.spec import ModelSpec

# What a server process needs from the deploying process's environment to load a model like the trainer did.
PASSED_ENV = ("PYTHONPATH", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "MLOPS_TRAINER_PACKAGES")


class LocalBackend:
    name = "local"

    protocol = endpoint.MLFLOW

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

    def stable_url(self) -> str | None:
        """Where the platform reaches what serves: the stable address itself, on this machine."""
        return self.endpoint()

    @staticmethod
    def session() -> Any:
        return endpoint.session()

    def begin_bake(self, tag: str) -> None:
        """Nothing to do: the bake is a shadow one (no traffic router on loopback)."""

    def serving_processes(self) -> list[dict[str, Any]]:
        """The processes on the shared socket that serve (alive, not told to stop, not given up)."""
        return serving(self._processes())

    def serving_versions(self) -> list[str]:
        return sorted({p["version"] for p in self.serving_processes()})

    def status(self) -> dict[str, Any]:
        ready = sum(1 for p in self.serving_processes() if endpoint.healthy(p["private_url"], timeout=1))
        return {"backend": self.name, "endpoint": self.endpoint(), "versions": self.serving_versions(),
                "replicas": self.serving.replicas, "replicas_ready": ready}

    # --- the model's files ------------------------------------------------------------------------------
    def model_path(self, version: str) -> str:
        """The version's MLflow model, downloaded once under the serving folder (servers load local files)."""
        from mlops import tracking
        from mlops.serving.fetch import download_model

        tracking.client(self.settings)  # points MLflow at the platform's tracking store
        return str(download_model(self.spec.name, version, self.root / "models" / self.spec.name / f"v{version}"))

    # --- rollout steps ------------------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        env["MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT"] = str(int(max(1, self.serving.timeouts.request_seconds)))
        if self.serving.gpus == 0:
            env["CUDA_VISIBLE_DEVICES"] = ""  # CPU serving stays off the workstation's GPUs
        return env

    def _start(self, version: str, role: str, tag: str) -> dict[str, Any]:
        return self.supervisor.start(self.spec.name, version, self.model_path(version), role, self._env(),
                                     graceful_seconds=self.serving.timeouts.drain_seconds, tag=tag)

    def _stop(self, procs: list[dict[str, Any]]) -> None:
        self.supervisor.stop(self.spec.name, [p["id"] for p in procs], self.serving.timeouts.drain_seconds)

    def _why_gone(self, proc_id: int) -> str | None:
        proc = next((p for p in self._processes() if p["id"] == proc_id), None)
        if proc is None:
            return "its process is gone (stopped by someone else)"
        if proc["alive"]:
            return None
        return endpoint.exit_reason(int(proc["exit_code"]), log_tail(Path(proc["log"])))

    def _wait(self, proc: dict[str, Any], what: str) -> float:
        return endpoint.wait_ready(proc["private_url"], self.serving.timeouts.ready_seconds,
                                   lambda: self._why_gone(int(proc["id"])), what)

    def start_candidate(self, version: str, tag: str, previous: tuple[str, str] | None = None) -> dict[str, Any]:
        """Start the version on a private port and wait until it answers; what serves is untouched."""
        self.abort(tag)  # leftovers of an earlier try of this rollout (a retried or cleared task)
        proc = self._start(version, "candidate", tag)
        handle = {"version": version, "ids": [proc["id"]], "url": proc["private_url"]}
        try:
            handle["ready_seconds"] = self._wait(proc, f"{self.spec.name} v{version}")
        except endpoint.NotReady:
            self.abort(tag)
            raise
        return handle

    def candidate_problem(self, url: str) -> str | None:
        """Why the candidate at `url` cannot take the next step (None when it can)."""
        proc = next((p for p in self._processes() if p["private_url"] == url), None)
        if proc is None or proc["stopping"]:
            return (f"the candidate at {url} is gone (its rollout was rolled back or its server stopped); clear "
                    "start_candidate to start it again")
        if not proc["alive"]:
            return "the candidate " + endpoint.exit_reason(int(proc["exit_code"]), log_tail(Path(proc["log"])))
        return None

    def switch(self, version: str, tag: str) -> dict[str, Any]:
        """This rollout's replicas of the version on the shared socket, each healthy, beside what served before.
        Run again (a cleared task), it starts only the replicas that are missing."""
        mine = [p for p in self.serving_processes() if p["tag"] == tag and p["version"] == version]
        started: list[dict[str, Any]] = []
        try:
            for i in range(len(mine), self.serving.replicas):
                proc = self._start(version, "stable", tag)
                started.append(proc)
                self._wait(proc, f"{self.spec.name} v{version} (replica {i + 1} of {self.serving.replicas})")
        except endpoint.NotReady:
            self._stop(started)  # drained: the ones that were healthy already took connections
            raise
        replicas = mine + started
        self.supervisor.mark_ready(self.spec.name, [p["id"] for p in replicas])
        return {"version": version, "ids": [p["id"] for p in replicas],
                "urls": [p["private_url"] for p in replicas], "endpoint": self.endpoint()}

    def retire(self, tag: str) -> list[str]:
        """Drain and stop every process but this rollout's replicas on the shared socket: the version that
        served before, candidates (this rollout's, and any an interrupted rollout left). Returns the versions
        that stopped serving."""
        procs = self._processes()
        old = [p for p in procs if not (p["role"] == "stable" and p["tag"] == tag)]
        self._stop(old)
        kept = {p["version"] for p in procs if p["role"] == "stable" and p["tag"] == tag}
        return sorted({p["version"] for p in old if p["role"] == "stable"} - kept)

    def abort(self, tag: str, previous: tuple[str, str] | None = None) -> list[int]:
        """Stop what this rollout started (its candidate, and its replicas if the switch had begun, drained);
        what served before keeps serving (it is only stopped by retire, so `previous` is not needed here)."""
        doomed = [p for p in self._processes() if p["tag"] == tag]
        self._stop(doomed)
        return [p["id"] for p in doomed]

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
        backend.switch(version, tag=f"restore-{int(time.time())}")
    return f"{spec.name}: v{version} serves at {backend.endpoint()} ({spec.serving.replicas} replica(s))"
