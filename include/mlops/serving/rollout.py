"""The deploy steps, in order: resolve -> start (until ready) -> smoke -> bake -> switch -> record -> retire,
and roll_back when any step after the candidate started failed. Each step reads and updates the rollout
record, so the steps can run as separate Airflow tasks (and be retried) and the fleet page can follow them.

The stable version serves the whole time: it is only stopped by `retire`, after the new version serves and
is recorded. A failed step leaves its reason in the record; `roll_back` stops what the rollout started and
says why the rollout failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from mlops.serving import records
from mlops.serving.records import Rollout, RolloutLog, Stopwatch
from mlops.settings import Settings
from mlops.spec import ModelSpec

log = logging.getLogger(__name__)
T = TypeVar("T")


class DeployError(RuntimeError):
    """A rollout step failed; the message says which and why. The stable version still serves."""


class NothingToDeploy(RuntimeError):
    """The requested version already serves: the run changes nothing."""


@dataclass(frozen=True)
class Plan:
    rollout_id: str
    version: str
    from_version: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"rollout_id": self.rollout_id, "version": self.version, "from_version": self.from_version}


def backend_for(settings: Settings, spec: ModelSpec, cluster: Any = None) -> Any:
    """The spec's serving backend; `cluster` is the Kubernetes API client of a cluster backend (the deploy
    DAG's operators pass their connection's)."""
    assert spec.serving is not None, f"{spec.name} has no serving section"
    if spec.serving.backend == "kubernetes":
        from mlops.serving.k8s import KubernetesBackend

        return KubernetesBackend(settings, spec, cluster)
    if spec.serving.backend == "kserve":
        from mlops.serving.kserve import KServeBackend, KServeServerlessBackend

        if spec.serving.kserve_mode == "Serverless":
            return KServeServerlessBackend(settings, spec, cluster)
        return KServeBackend(settings, spec, cluster)
    from mlops.serving.local import LocalBackend

    return LocalBackend(settings, spec)


def _log(settings: Settings, spec: ModelSpec) -> RolloutLog:
    return RolloutLog(settings.audit_root, spec.name)


def _load(settings: Settings, spec: ModelSpec, rollout_id: str) -> Rollout:
    found = _log(settings, spec).get(rollout_id)
    if found is None:
        raise DeployError(f"{spec.name}: no rollout record {rollout_id}; run the deploy from its first task")
    return found


def _step(settings: Settings, spec: ModelSpec, rollout: Rollout, name: str, work: Callable[[], T],
          detail: Callable[[T], str] = lambda _: "") -> T:
    """Run one step, timing it into the record; a failure is recorded with its reason and raised as DeployError."""
    clock = Stopwatch()
    try:
        out = work()
    except Exception as exc:
        reason = str(exc) if isinstance(exc, (DeployError,)) or type(exc).__module__.startswith("mlops") else (
            f"{type(exc).__name__}: {exc}")
        _fail(settings, spec, rollout, name, reason, clock.seconds)
        raise DeployError(f"{spec.name}: the rollout of v{rollout.to_version} failed at {name}: {reason}") from exc
    except BaseException as exc:  # the task's timeout or a kill: recorded, then let through as it came
        _fail(settings, spec, rollout, name, f"interrupted after {clock.seconds:.0f} s ({type(exc).__name__}: "
              f"{exc or 'the task timed out or was stopped'})", clock.seconds)
        raise
    rollout.step(name, clock.seconds, detail(out))
    _log(settings, spec).save(rollout)
    return out


def _fail(settings: Settings, spec: ModelSpec, rollout: Rollout, step: str, reason: str, seconds: float) -> None:
    rollout.failure = {"step": step, "reason": reason}
    rollout.step(step, seconds, "failed")
    _log(settings, spec).save(rollout)


def resolve(settings: Settings, spec: ModelSpec, requested: str | None, actor: str, reason: str,
        cluster: Any = None) -> Plan:
    """Which version to roll out (the requested one, else the champion) and from which; NothingToDeploy when it
    already serves."""
    from mlops import tracking
    from mlops.scoring import champion_of

    if requested:
        version = requested.strip().lstrip("v")
        from mlflow.exceptions import MlflowException

        try:
            mv = tracking.client(settings).get_model_version(spec.name, version)
        except MlflowException:
            raise DeployError(f"{spec.name}: there is no registered version {version}; pick one from `python -m "
                              "mlops.registry status` or leave the version empty for the champion") from None
        tracking.training_run_id(spec.name, mv)  # a version without a training run cannot be smoke-tested
    else:
        version = champion_of(spec, settings).version
    backend = backend_for(settings, spec, cluster)
    deployed = records.deployed_version(settings, spec)
    status = backend.status()
    serving_now = status["versions"]
    if deployed == version and serving_now == [version] and status["replicas_ready"] >= status["replicas"]:
        raise NothingToDeploy(f"{spec.name}: v{version} already serves at {status['endpoint']} "
                              f"({status['replicas_ready']} of {status['replicas']} replicas ready); nothing to do")
    from_version = next((v for v in serving_now if v != version), None) if serving_now else None
    rollout = Rollout(id=records.rollout_id(spec.name, actor), model=spec.name, backend=backend.name,
                      from_version=from_version, to_version=version, actor=actor,
                      reason=reason or ("the champion changed" if not requested else f"v{version} requested"))
    previous = _log(settings, spec).get(rollout.id)
    if previous is not None and previous.verdict in (records.DEPLOYED, records.ROLLED_BACK):
        # A cleared task of a finished run: its rollout id (and so its objects' labels) belongs to what it did;
        # starting again under it could stop what that rollout put in service.
        raise DeployError(f"{spec.name}: this deploy run already finished ({previous.verdict}, "
                          f"v{previous.from_version or '-'} -> v{previous.to_version}); trigger a new run of "
                          f"{spec.deploy_dag_id} instead of clearing this one")
    if previous is not None:  # a retried resolve keeps the record's start and history
        rollout.started, rollout.steps = previous.started, previous.steps
    rollout.endpoint = backend.endpoint()
    rollout.step("resolve", 0.0, f"v{from_version or '-'} -> v{version}")
    _log(settings, spec).save(rollout)
    return Plan(rollout.id, version, from_version)


def start(settings: Settings, spec: ModelSpec, rollout_id: str, cluster: Any = None) -> dict[str, Any]:
    rollout = _load(settings, spec, rollout_id)
    backend = backend_for(settings, spec, cluster)
    handle: dict[str, Any] = _step(settings, spec, rollout, "start",
                                   lambda: backend.start_candidate(rollout.to_version, rollout.id,
                                                                   previous_deploy(settings, spec, rollout)),
                                   lambda h: f"ready in {h['ready_seconds']:.1f} s at {h['url']}")
    return handle


def smoke(settings: Settings, spec: ModelSpec, rollout_id: str, candidate_url: str,
        cluster: Any = None) -> dict[str, Any]:
    from mlops.serving import smoke as smoke_test

    serving = spec.serving
    assert serving is not None
    rollout = _load(settings, spec, rollout_id)

    backend = backend_for(settings, spec, cluster)

    def work() -> dict[str, Any]:
        _candidate_there(backend, candidate_url)
        sample = smoke_sample(settings, spec, rollout.to_version)
        report = smoke_test.check(candidate_url, sample, list(spec.dataset.features), serving.smoke.rows,
                                  serving.smoke.tolerance, serving.timeouts.request_seconds,
                                  f"{spec.name} v{rollout.to_version}", backend.session, backend.protocol)
        rollout.smoke = report.to_dict()  # saved with the step
        return rollout.smoke

    return _step(settings, spec, rollout, "smoke", work,
                 lambda r: f"{r['rows']} rows, max |online - offline| {r['max_abs_diff']:.2g}")


def _candidate_there(backend: Any, url: str) -> None:
    problem = backend.candidate_problem(url)
    if problem:
        raise DeployError(problem)


def smoke_sample(settings: Settings, spec: ModelSpec, version: str) -> Any:
    """The holdout rows and offline scores the trainer logged with the version."""
    import mlflow

    from mlops import storage, tracking
    from mlops.serving.smoke import SAMPLE_ARTIFACT

    client = tracking.client(settings)
    run_id = tracking.training_run_id(spec.name, client.get_model_version(spec.name, version))
    try:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=SAMPLE_ARTIFACT)
    except Exception as exc:  # noqa: BLE001 - MLflow raises several kinds for a missing artifact
        raise DeployError(f"v{version} has no smoke sample ({SAMPLE_ARTIFACT} in run {run_id}: {exc}); it was "
                          "trained before serving existed: retrain it") from None
    return storage.read_frame(path)


def bake(settings: Settings, spec: ModelSpec, rollout_id: str, candidate_url: str,
        cluster: Any = None) -> dict[str, Any]:
    from mlops.serving import bake as canary

    rollout = _load(settings, spec, rollout_id)
    backend = backend_for(settings, spec, cluster)

    def work() -> dict[str, Any]:
        _candidate_there(backend, candidate_url)
        traffic = canary.newest_scored_traffic(spec, settings)
        if traffic is None:
            sample = smoke_sample(settings, spec, rollout.to_version)
            traffic = canary.Traffic(sample[list(spec.dataset.features)],
                                     "the version's holdout rows (no partition has been scored in batch yet)")
        # a first deploy has nothing to compare with (a backend may already count the candidate as serving)
        stable = backend.stable_url() if rollout.from_version and backend.serving_versions() else None
        backend.begin_bake(rollout.id)  # a backend that splits traffic gives the candidate its canary share
        report = canary.run(spec, traffic, candidate_url, stable, backend.session, backend.protocol)
        rollout.bake = report.to_dict()
        if not report.passed:
            raise DeployError("the canary bake broke the guardrails: " + "; ".join(report.failures)
                              + f" [{report.summary()}]")
        return rollout.bake

    return _step(settings, spec, rollout, "bake", work,
                 lambda r: f"{r['requests']} requests, p99 {r['p99_ms']:.1f} ms, errors {r['errors']}")


def switch(settings: Settings, spec: ModelSpec, rollout_id: str, cluster: Any = None) -> dict[str, Any]:
    rollout = _load(settings, spec, rollout_id)
    backend = backend_for(settings, spec, cluster)

    def work() -> dict[str, Any]:
        out: dict[str, Any] = backend.switch(rollout.to_version, rollout.id)
        _warm_up(settings, spec, rollout.to_version, out.get("urls", []), backend.session, backend.protocol)
        rollout.endpoint = out["endpoint"]  # saved with the step
        return out

    out: dict[str, Any] = _step(settings, spec, rollout, "switch", work,
                                lambda o: f"{len(o['ids'])} replica(s) of v{rollout.to_version} on {o['endpoint']}")
    return out


def _warm_up(settings: Settings, spec: ModelSpec, version: str, urls: list[str],
             session: Callable[[], Any], protocol: Any) -> None:
    """One request of the smoke rows to each new replica, before the old version is retired (so before the new
    one takes every connection). A replica that cannot answer it fails the switch."""
    from mlops.serving import endpoint

    assert spec.serving is not None
    sample = smoke_sample(settings, spec, version)
    body = protocol.body(sample[list(spec.dataset.features)].head(spec.serving.smoke.rows))
    for url in urls:
        answer = protocol.invoke(session(), url, body, spec.serving.timeouts.request_seconds)
        if not answer.ok:
            raise DeployError(f"replica {url} of v{version} failed its warm-up request: {endpoint.describe(answer)}")


def record(settings: Settings, spec: ModelSpec, rollout_id: str) -> dict[str, Any]:
    """The deployed alias moves, audited: `deploy`, or `deploy_rollback` when the version is the one that served
    before the current one (the `previous_alias`): the endpoint was moved back."""
    from mlops import tracking

    assert spec.serving is not None
    rollout = _load(settings, spec, rollout_id)
    previous = tracking.version_by_alias(settings, spec.name, spec.serving.previous_alias)
    action = "deploy_rollback" if previous is not None and str(previous.version) == rollout.to_version else "deploy"

    def work() -> str | None:
        rec = records.record_deploy(settings, spec, rollout, action)
        rollout.audit_id = rec.id if rec is not None else None  # saved with the step
        return rollout.audit_id

    audit_id = _step(settings, spec, rollout, "record", work, lambda a: f"audit record {a or '(already there)'}")
    return {"audit_id": audit_id}


def retire(settings: Settings, spec: ModelSpec, rollout_id: str, cluster: Any = None) -> dict[str, Any]:
    rollout = _load(settings, spec, rollout_id)
    backend = backend_for(settings, spec, cluster)
    retired: list[str] = _step(settings, spec, rollout, "retire", lambda: backend.retire(rollout.id),
                               lambda r: "retired " + (", ".join(f"v{v}" for v in r) or "nothing"))
    rollout.verdict, rollout.finished = records.DEPLOYED, records._now()
    rollout.retired_usage = _retired_usage(settings, spec, rollout)
    _log(settings, spec).save(rollout)
    return {**summary(rollout), "retired": retired, "retired_usage": rollout.retired_usage}


def _retired_usage(settings: Settings, spec: ModelSpec, rollout: Rollout) -> dict[str, Any] | None:
    """The replica-hours and estimated cost of the version this rollout retired, over its time in service."""
    from datetime import datetime

    from mlops import cost
    from mlops.compute import catalogue_path, load_catalogue

    assert spec.serving is not None
    done = rollout.finished
    before = previous_deploy(settings, spec, rollout)
    if before is None or done is None:
        return None
    served = _log(settings, spec).get(before[1])
    if served is None or served.finished is None:
        return None
    seconds = (datetime.fromisoformat(done) - datetime.fromisoformat(served.finished)).total_seconds()
    try:
        used = cost.serving_usage(load_catalogue(catalogue_path(settings.compute_dir)), spec.serving, seconds)
    except Exception:  # noqa: BLE001 - bookkeeping: a broken catalogue must not fail a finished rollout
        log.warning("%s: the retired version's serving cost was not recorded", spec.name, exc_info=True)
        return None
    return {"version": served.to_version, "replica_hours": round(seconds * used.replicas / 3600, 4), **used.to_dict()}


def roll_back(settings: Settings, spec: ModelSpec, rollout_id: str, cluster: Any = None) -> dict[str, Any]:
    """Undo a failed rollout: stop what it started; the stable version (never stopped) keeps serving."""
    rollout = _load(settings, spec, rollout_id)
    backend = backend_for(settings, spec, cluster)
    clock = Stopwatch()
    _undo_record(settings, spec, rollout)
    stopped = backend.abort(rollout.id, previous_deploy(settings, spec, rollout))
    what = "process(es)" if backend.name == "local" else "Deployment(s)"
    rollout.step("roll_back", clock.seconds, f"stopped {len(stopped)} {what} of v{rollout.to_version}")
    rollout.verdict, rollout.finished = records.ROLLED_BACK, records._now()
    _log(settings, spec).save(rollout)
    serving_now = backend.serving_versions()
    failure = rollout.failure or {"step": "?", "reason": "(no reason recorded)"}
    message = (f"{spec.name}: the rollout of v{rollout.to_version} failed at {failure['step']} and was rolled back; "
               + (f"v{', v'.join(serving_now)} keeps serving at {backend.endpoint()}" if serving_now
                  else "nothing was serving before, so nothing serves") + f". Why: {failure['reason']}")
    log.warning("%s", message)
    return {**summary(rollout), "message": message, "serving": serving_now}


def approval_given(settings: Settings, spec: ModelSpec, rollout_id: str, record: dict[str, Any]) -> None:
    """A person let the candidate through (or the request's default did): kept with the rollout, and so with
    its audit record."""
    rollout = _load(settings, spec, rollout_id)
    rollout.approval = record
    rollout.step("approval", 0.0, str(record.get("verdict")) + (f" by {record['by']}" if record.get("by") else ""))
    _log(settings, spec).save(rollout)


def reject(settings: Settings, spec: ModelSpec, rollout_id: str, record: dict[str, Any], why: str,
           cluster: Any = None) -> dict[str, Any]:
    """A person (or the request's timeout) said no: the candidate stops as after a failed gate; the stable
    version never stopped serving."""
    rollout = _load(settings, spec, rollout_id)
    rollout.approval = record
    rollout.failure = {"step": "approval", "reason": why}
    rollout.step("approval", 0.0, str(record.get("verdict")))
    _log(settings, spec).save(rollout)
    return roll_back(settings, spec, rollout_id, cluster=cluster)


def previous_deploy(settings: Settings, spec: ModelSpec, rollout: Rollout) -> tuple[str, str] | None:
    """(version, rollout id) of the newest finished rollout that put `rollout.from_version` in service: what a
    cluster backend puts back if this rollout fails after it took the traffic. None on a first deploy."""
    if rollout.from_version is None:
        return None
    for done in reversed(_log(settings, spec).all()):
        if done.id != rollout.id and done.verdict == records.DEPLOYED and done.to_version == rollout.from_version:
            return done.to_version, done.id
    return None


def _undo_record(settings: Settings, spec: ModelSpec, rollout: Rollout) -> None:
    """When record_deployment moved the alias before its task failed (killed after the move), the alias
    goes back to what still serves, audited, before the new version is stopped."""
    from mlops import tracking
    from mlops.locks import model_lock

    serving = spec.serving
    assert serving is not None
    with model_lock(settings, spec.name):
        if records.deployed_version(settings, spec) != rollout.to_version:
            return
        if rollout.from_version is None:  # a first deploy: nothing served before, so no version is deployed
            tracking.client(settings).delete_registered_model_alias(spec.name, serving.deployed_alias)
            return
    back = Rollout(rollout.id, spec.name, rollout.backend, rollout.to_version, rollout.from_version,
                   rollout.actor, f"the rollout of v{rollout.to_version} failed after the alias moved")
    records.record_deploy(settings, spec, back, "deploy_rollback")


def summary(rollout: Rollout) -> dict[str, Any]:
    return {"rollout_id": rollout.id, "model": rollout.model, "verdict": rollout.verdict,
            "from_version": rollout.from_version, "to_version": rollout.to_version, "endpoint": rollout.endpoint,
            "failure": rollout.failure, "smoke": rollout.smoke, "bake": rollout.bake, "timeline": rollout.timeline(),
            "audit_id": rollout.audit_id, "approval": rollout.approval}
