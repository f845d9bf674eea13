"""Moving the champion alias: serialised per model, compare-and-set, audited, idempotent.

A promotion names the champion its decision was made against. Under the model's lock the alias only
moves if that is still the champion; otherwise the decision is stale and nothing changes (a forced
promotion still applies: it never depended on the comparison). Re-running
or retrying a promotion that already happened changes nothing and writes no second record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mlops import tracking
from mlops.audit import AuditLog, AuditRecord
from mlops.locks import model_lock
from mlops.policy import Decision
from mlops.settings import Settings
from mlops.spec import ModelSpec


@dataclass(frozen=True)
class PromotionResult:
    outcome: str  # promoted | unchanged | stale | not_promoted | rolled_back
    champion: str | None
    previous: str | None
    message: str
    audit_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _v(version: str | None) -> str:
    return f"v{version}" if version else "(none)"


def _current(settings: Settings, spec: ModelSpec) -> str | None:
    v = tracking.version_by_alias(settings, spec.name, spec.promotion.alias)
    return str(v.version) if v is not None else None


def _move(settings: Settings, spec: ModelSpec, audit: AuditLog, current: str | None, target: str,
          action: str, actor: str, reason: str, evidence: dict[str, Any]) -> AuditRecord:
    p = spec.promotion
    return move_aliases(settings, spec.name, p.alias, p.previous_alias, audit,
                        AuditRecord(spec.name, p.alias, current, target, action, actor, reason, evidence))


def move_aliases(settings: Settings, name: str, alias: str, previous_alias: str, audit: AuditLog,
                 record: AuditRecord) -> AuditRecord:
    """`alias` to the record's target and `previous_alias` to what `alias` held, and the audit record, or none of
    them: a failure part-way (the server refusing a request, the audit store unwritable) puts the aliases back
    before the error is raised. The caller holds the model's lock."""
    client = tracking.client(settings)
    current, target = record.from_version, record.to_version
    old_previous = None
    if current is not None:
        v = tracking.version_by_alias(settings, name, previous_alias)
        old_previous = str(v.version) if v is not None else None
    undo: list[tuple[str, str | None]] = []  # (alias, the version it pointed at before)
    try:
        if current is not None:
            client.set_registered_model_alias(name, previous_alias, current)
            undo.append((previous_alias, old_previous))
        client.set_registered_model_alias(name, alias, target)
        undo.append((alias, current))
        return audit.append(record)
    except Exception as exc:
        try:
            for undo_alias, version in reversed(undo):
                if version is None:
                    client.delete_registered_model_alias(name, undo_alias)
                else:
                    client.set_registered_model_alias(name, undo_alias, version)
        except Exception as undo_exc:  # noqa: BLE001 - say what state is left, with the first error
            raise RuntimeError(
                f"{name}: moving {alias} to v{target} failed ({exc}), and putting the aliases back failed too "
                f"({undo_exc}); the next run of the task completes the audit record or the move") from exc
        raise


def promote(settings: Settings, spec: ModelSpec, challenger: str, decision: Decision,
            expected_champion: str | None, actor: str, evidence: dict[str, Any] | None = None) -> PromotionResult:
    name, alias = spec.name, spec.promotion.alias
    if not decision.promote:
        current = _current(settings, spec)
        return PromotionResult("not_promoted", current, None,
                               f"{name}: v{challenger} not promoted ({decision.outcome}): "
                               + "; ".join(decision.reasons))
    audit = AuditLog(settings.audit_root, name)
    with model_lock(settings, name):
        current = _current(settings, spec)
        if current == challenger:
            last = audit.last_for_alias(alias)
            if last is None or last.to_version != challenger:
                # The alias moved but the record was never written (a crash in between): complete it once.
                rec = audit.append(AuditRecord(name, alias, None, challenger, "repair", actor,
                                               "alias had moved without its audit record", evidence or {}))
                return PromotionResult("unchanged", challenger, None, f"{name}: v{challenger} is champion; "
                                       "audit record completed", rec.id)
            return PromotionResult("unchanged", challenger, last.from_version,
                                   f"{name}: v{challenger} is already {alias}; nothing to do")
        if any(r.actor == actor and r.to_version == challenger and r.action in ("promote", "force_promote")
               for r in audit.records()):
            # This run already promoted this version; a later rollback must not be undone by clearing it.
            return PromotionResult("unchanged", current, None,
                                   f"{name}: {actor} already promoted v{challenger}; nothing to do (champion is "
                                   f"{_v(current)})")
        reasons = list(decision.reasons)
        if current != expected_champion:
            if not decision.forced:
                return _superseded(settings, spec, challenger, expected_champion, current)
            # A forced promotion is the user's explicit choice, whichever model is champion now.
            reasons.append(f"champion changed from {_v(expected_champion)} to {_v(current)} while deciding")
        action = "force_promote" if decision.forced else "promote"
        rec = _move(settings, spec, audit, current, challenger, action, actor, "; ".join(reasons),
                    {"decision": decision.to_dict(), **(evidence or {})})
        return PromotionResult("promoted", challenger, current,
                               f"{name}: {alias} moved {_v(current)} -> v{challenger}", rec.id)


def _interval_end(settings: Settings, name: str, version: str | None) -> str:
    if version is None:
        return ""
    end: str = tracking.client(settings).get_model_version(name, version).tags.get(tracking.INTERVAL_END, "")
    return end


def _superseded(settings: Settings, spec: ModelSpec, challenger: str, expected: str | None,
                current: str | None) -> PromotionResult:
    """Another run promoted while this one decided (concurrent backfill runs, a manual trigger beside
    the schedule). Nothing moves. A champion trained on data at least as new would have been kept anyway;
    otherwise the comparison is simply out of date, and the next run compares with the new champion."""
    name = spec.name
    champion_end, challenger_end = _interval_end(settings, name, current), _interval_end(settings, name, challenger)
    if champion_end and challenger_end and champion_end >= challenger_end:
        return PromotionResult("not_promoted", current, None,
                               f"{name}: v{challenger} not promoted: {_v(current)} became champion meanwhile and was "
                               f"trained on data at least as new (up to {champion_end}; v{challenger}: up to "
                               f"{challenger_end})")
    return PromotionResult(
        "stale", current, None,
        f"{name}: the decision compared v{challenger} with champion {_v(expected)}, but {_v(current)} is champion "
        "now (another run promoted it meanwhile); nothing changed. The next run compares with the new champion; "
        "to compare now, clear this run's train task")


def rollback(settings: Settings, spec: ModelSpec, actor: str, reason: str,
             to_version: str | None = None) -> PromotionResult:
    """Point the champion back at `to_version` (default: the previous champion). Audited like a promotion."""
    name, p = spec.name, spec.promotion
    if not reason.strip():
        raise ValueError("a rollback needs a reason; it goes to the audit log")
    audit = AuditLog(settings.audit_root, name)
    with model_lock(settings, name):
        current = _current(settings, spec)
        if to_version is None:
            prev = tracking.version_by_alias(settings, name, p.previous_alias)
            if prev is None:
                raise ValueError(f"{name}: no '{p.previous_alias}' alias to roll back to; name a version")
            to_version = str(prev.version)
        from mlflow.exceptions import MlflowException

        try:
            tracking.client(settings).get_model_version(name, to_version)
        except MlflowException:
            raise ValueError(f"{name}: there is no version {to_version} to roll back to") from None
        if current == to_version:
            return PromotionResult("unchanged", current, None, f"{name}: v{to_version} is already {p.alias}")
        rec = _move(settings, spec, audit, current, to_version, "rollback", actor, reason, {})
        return PromotionResult("rolled_back", to_version, current,
                               f"{name}: {p.alias} rolled back {_v(current)} -> v{to_version}", rec.id)
