"""What a deploy leaves behind: the registry alias of the serving version (`serving.deployed_alias`, with
`serving.previous_alias` on the one it replaced), an audit record per move (the same log as the champion's),
and one rollout record per deploy run, updated as the run goes (steps with their times, the smoke test's and
the bake's figures, the verdict). The fleet page reads the alias and the newest rollout record."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from mlops.audit import AuditLog, AuditRecord

if TYPE_CHECKING:
    from mlops.settings import Settings
    from mlops.spec import ModelSpec

log = logging.getLogger(__name__)
RUNNING, DEPLOYED, ROLLED_BACK, UNCHANGED = "running", "deployed", "rolled_back", "unchanged"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def rollout_id(model: str, actor: str) -> str:
    """One id per deploy run: its tasks (and their retries) update the same record."""
    return hashlib.sha1(f"{model}\n{actor}".encode()).hexdigest()[:12]


@dataclass
class Rollout:
    id: str
    model: str
    backend: str
    from_version: str | None
    to_version: str
    actor: str
    reason: str
    started: str = field(default_factory=_now)
    verdict: str = RUNNING
    steps: list[dict[str, Any]] = field(default_factory=list)  # {step, at, seconds, detail}
    failure: dict[str, str] | None = None  # {step, reason}
    smoke: dict[str, Any] | None = None
    bake: dict[str, Any] | None = None
    endpoint: str | None = None
    finished: str | None = None
    audit_id: str | None = None
    approval: dict[str, Any] | None = None  # the approval record (mlops.approval) when the spec asked for one
    retired_usage: dict[str, Any] | None = None  # replica-hours and cost of the version it retired (mlops.cost)

    def step(self, name: str, seconds: float, detail: str = "") -> None:
        self.steps = [s for s in self.steps if s["step"] != name]  # a retried step replaces its entry
        self.steps.append({"step": name, "at": _now(), "seconds": round(seconds, 3), "detail": detail})

    def timeline(self) -> str:
        return ", ".join(f"{s['step']} {s['seconds']:.1f} s" for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RolloutLog:
    """One JSON document per rollout under `<audit_root>/<model>/rollouts/`, named so names sort by start."""

    def __init__(self, root: str, model: str):
        from mlops.storage import filesystem

        self.model = model
        self.fs, base = filesystem(root)
        self.dir = f"{base.rstrip('/')}/{model}/rollouts"

    def _path(self, rollout: Rollout) -> str:
        stamp = rollout.started.replace(":", "").replace("-", "").replace("+0000", "Z")
        return f"{self.dir}/{stamp}-{rollout.id}.json"

    def save(self, rollout: Rollout) -> Rollout:
        """Written whole or not at all: to a temporary name, then renamed (object stores write whole objects)."""
        self.fs.makedirs(self.dir, exist_ok=True)
        path = self._path(rollout)
        with self.fs.open(path + ".tmp", "w") as f:
            f.write(json.dumps(rollout.to_dict(), sort_keys=True))
        self.fs.mv(path + ".tmp", path)
        return rollout

    def _read(self, path: str) -> Rollout | None:
        try:
            with self.fs.open(path) as f:
                return Rollout(**json.loads(f.read()))
        except (OSError, ValueError, TypeError) as exc:  # one unreadable record must not hide the others
            log.warning("skipping the unreadable rollout record %s: %s", path, exc)
            return None

    def _paths(self) -> list[str]:
        if not self.fs.exists(self.dir):
            return []
        return sorted(str(p) for p in self.fs.ls(self.dir, detail=False) if str(p).endswith(".json"))

    def all(self) -> list[Rollout]:
        return [r for r in map(self._read, self._paths()) if r is not None]

    def get(self, rollout_id: str) -> Rollout | None:
        found = [p for p in self._paths() if p.endswith(f"-{rollout_id}.json")]
        return self._read(found[-1]) if found else None

    def latest(self, finished_only: bool = False) -> Rollout | None:
        done = [r for r in self.all() if not finished_only or r.verdict != RUNNING]
        return done[-1] if done else None


def deployed_version(settings: Settings, spec: ModelSpec) -> str | None:
    from mlops import tracking

    assert spec.serving is not None
    v = tracking.version_by_alias(settings, spec.name, spec.serving.deployed_alias)
    return str(v.version) if v is not None else None


def record_deploy(settings: Settings, spec: ModelSpec, rollout: Rollout, action: str) -> AuditRecord | None:
    """Point the deployed alias at the rollout's version under the model's lock (promotions and deploys take
    turns), with an audit record carrying the gates' figures. Nothing when the alias is already there."""
    from mlops.locks import model_lock
    from mlops.promotion import move_aliases

    serving = spec.serving
    assert serving is not None
    audit = AuditLog(settings.audit_root, spec.name)
    with model_lock(settings, spec.name):
        current = deployed_version(settings, spec)
        if current == rollout.to_version:
            last = audit.last_for_alias(serving.deployed_alias)
            if last is not None and last.to_version == rollout.to_version:
                return None
            current = rollout.from_version  # moved without its record (a crash in between): the real "from"
        evidence = {"rollout_id": rollout.id, "backend": rollout.backend, "endpoint": rollout.endpoint,
                    "smoke": rollout.smoke, "bake": rollout.bake, "timeline": rollout.steps,
                    **({"approval": rollout.approval} if rollout.approval else {})}
        return move_aliases(settings, spec.name, serving.deployed_alias, serving.previous_alias, audit,
                            AuditRecord(spec.name, serving.deployed_alias, current, rollout.to_version, action,
                                        rollout.actor, rollout.reason, evidence))


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.monotonic()

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.start
