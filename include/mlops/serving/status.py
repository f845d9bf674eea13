"""What serves, per model, without changing anything (no supervisor is started to answer): the deployed
alias next to the champion, the endpoint, replicas ready, and the newest rollout's verdict and figures.
The CLI's `status` and the fleet page show this."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops.serving import control, endpoint
from mlops.serving.records import RolloutLog, deployed_version
from mlops.serving.supervisor import serving
from mlops.settings import Settings
from mlops.spec import ModelSpec


def _slot(settings: Settings, spec: ModelSpec) -> dict[str, Any] | None:
    sup = control.find(Path(settings.serving.dir))
    if sup is None:
        return None
    try:
        return sup.model(spec.name)
    except control.SupervisorError:
        return None


def endpoint_of(settings: Settings, spec: ModelSpec) -> str | None:
    """The model's stable address, while a live process serves it."""
    slot = _slot(settings, spec)
    return str(slot["url"]) if slot and serving(slot["processes"]) else None


def model_status(settings: Settings, spec: ModelSpec) -> dict[str, Any]:
    from mlops import tracking

    assert spec.serving is not None
    if spec.serving.backend != "local":
        return _cluster_status(settings, spec)
    champion = tracking.version_by_alias(settings, spec.name, spec.promotion.alias)
    slot = _slot(settings, spec)
    live = serving(slot["processes"]) if slot else []
    ready = sum(1 for p in live if endpoint.healthy(p["private_url"], timeout=1))
    last = RolloutLog(settings.audit_root, spec.name).latest()
    deployed = deployed_version(settings, spec)
    row: dict[str, Any] = {
        "model": spec.name, "backend": spec.serving.backend,
        "deployed": f"v{deployed}" if deployed else "-", "deployed_version": deployed,
        "champion": f"v{champion.version}" if champion is not None else "-",
        "endpoint": slot["url"] if slot and live else "-",
        "serving": ", ".join(sorted({f"v{p['version']}" for p in live})) or "-",
        "replicas": spec.serving.replicas, "replicas_ready": ready, "ready": f"{ready}/{spec.serving.replicas}",
        "last_rollout": "-", "rollout": None,
    }
    if last is not None:
        row["rollout"] = last.to_dict()
        row["last_rollout"] = (f"{last.started[:19]} v{last.from_version or '-'} -> v{last.to_version}: {last.verdict}"
                               + (f" ({last.failure['step']})" if last.failure else ""))
    return row


def _cluster_status(settings: Settings, spec: ModelSpec) -> dict[str, Any]:
    """A cluster backend's row from the records alone (the fleet page does not call the cluster): the
    deployed alias, the endpoint of the newest finished rollout, and that rollout."""
    from mlops import tracking
    from mlops.serving.records import DEPLOYED

    assert spec.serving is not None
    champion = tracking.version_by_alias(settings, spec.name, spec.promotion.alias)
    log = RolloutLog(settings.audit_root, spec.name)
    last = log.latest()
    deployed = deployed_version(settings, spec)
    served = next((r for r in reversed(log.all()) if r.verdict == DEPLOYED), None)
    row: dict[str, Any] = {
        "model": spec.name, "backend": spec.serving.backend,
        "deployed": f"v{deployed}" if deployed else "-", "deployed_version": deployed,
        "champion": f"v{champion.version}" if champion is not None else "-",
        "endpoint": served.endpoint if served and deployed and served.endpoint else "-",
        "serving": f"v{deployed}" if deployed else "-",
        "replicas": spec.serving.replicas, "replicas_ready": None,
        "ready": "see the cluster", "last_rollout": "-", "rollout": None,
    }
    if last is not None:
        row["rollout"] = last.to_dict()
        row["last_rollout"] = (f"{last.started[:19]} v{last.from_version or '-'} -> v{last.to_version}: {last.verdict}"
                               + (f" ({last.failure['step']})" if last.failure else ""))
    return row
