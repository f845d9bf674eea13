"""What made a model version, who let it through and where it served, from the platform's own records:
MLflow (the version's tags and its training run), the validation result logged with that run, the audit,
approval and rollout logs. Works without lineage events."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from mlops.settings import Settings
from mlops.spec import ModelSpec


class UnknownVersion(LookupError):
    pass


def _validation(client: Any, run_id: str | None) -> dict[str, Any] | None:
    """The summary of the validation attached to the training run (validation/validation.json)."""
    if not run_id:
        return None
    try:
        path = client.download_artifacts(run_id, "validation/validation.json")
    except Exception:  # noqa: BLE001 - a run from before validations were attached, or a cache-hit copy
        return None
    with open(path) as f:
        summary: dict[str, Any] = json.load(f).get("summary") or {}
    return {k: summary.get(k) for k in ("success", "evaluated", "blocking_failures", "warnings")}


def version_lineage(settings: Settings, spec: ModelSpec, version: str) -> dict[str, Any]:
    from mlops import cost, tracking
    from mlops.approval import ApprovalLog
    from mlops.audit import AuditLog
    from mlops.lineage.datasets import partitions
    from mlops.serving.records import RolloutLog

    client = tracking.client(settings)
    version = version.removeprefix("v")
    try:
        mv = client.get_model_version(spec.name, version)
    except Exception as exc:  # noqa: BLE001 - MLflow says RESOURCE_DOES_NOT_EXIST in its own words
        raise UnknownVersion(f"{spec.name} has no version {version} in {tracking.client(settings).tracking_uri}"
                             f" ({type(exc).__name__})") from None
    tags = mv.tags or {}
    rt = client.get_run(mv.run_id).data.tags if mv.run_id else {}
    first, last = tags.get(tracking.WINDOW_FIRST), tags.get(tracking.WINDOW_LAST)
    window = ([{"day": d, "namespace": ns, "name": name} for d, ns, name in
               partitions(spec, settings.data_root, first, last)] if first and last else [])
    promotions = [r for r in AuditLog(settings.audit_root, spec.name).records()
                  if r.to_version == version and r.alias == spec.promotion.alias]
    approvals = [a for a in ApprovalLog(settings.audit_root, spec.name).records() if a.version == version]
    rollouts = RolloutLog(settings.audit_root, spec.name).all()
    served = [{"from": start.isoformat(timespec="seconds"), "to": end.isoformat(timespec="seconds")}
              for v, start, end in cost.serving_intervals(rollouts, datetime.now(timezone.utc)) if v == version]
    deploys = [{"rollout_id": r.id, "started": r.started, "finished": r.finished, "verdict": r.verdict,
                "from_version": r.from_version, "backend": r.backend, "endpoint": r.endpoint, "actor": r.actor,
                "approval": (r.approval or {}).get("by")} for r in rollouts if r.to_version == version]
    return {
        "model": spec.name, "version": version, "mlflow_run_id": mv.run_id,
        "airflow": {"dag_id": tags.get(tracking.DAG_ID), "run_id": tags.get(tracking.RUN_ID),
                    "logical_date": rt.get(tracking.LOGICAL_DATE) or None},
        "data": {"interval_start": tags.get(tracking.INTERVAL_START), "interval_end": tags.get(tracking.INTERVAL_END),
                 "first_day": first, "last_day": last, "fingerprint": tags.get(tracking.FINGERPRINT),
                 "partitions": window},
        "code": {"spec_hash": rt.get(tracking.SPEC_HASH), "code_version": rt.get(tracking.CODE_VERSION),
                 "git_sha": rt.get(tracking.GIT_SHA), "image_digest": rt.get(tracking.IMAGE_DIGEST)},
        "validation": _validation(client, mv.run_id),
        "cost": json.loads(tags[cost.VERSION_COST]) if tags.get(cost.VERSION_COST) else None,
        "promotions": [{"time": r.time, "action": r.action, "actor": r.actor, "from_version": r.from_version,
                        "approved_by": (r.evidence.get("approval") or {}).get("by"), "reason": r.reason}
                       for r in promotions],
        "approvals": [{"gate": a.gate, "verdict": a.verdict, "by": a.by, "comment": a.comment,
                       "responded_at": a.responded_at, "run": a.run} for a in approvals],
        "deploys": deploys,
        "served": served,
    }


def as_text(lineage: dict[str, Any]) -> list[str]:
    d, c, a = lineage["data"], lineage["code"], lineage["airflow"]
    v = lineage["validation"] or {}
    parts = d["partitions"]
    lines = [f"{lineage['model']} v{lineage['version']} (MLflow run {lineage['mlflow_run_id']})",
             f"  trained by   {a['dag_id']} / {a['run_id']}" + (f" (logical date {a['logical_date']})"
                                                               if a["logical_date"] else ""),
             f"  data         {d['interval_start']} .. {d['interval_end']}, days {d['first_day']}..{d['last_day']}, "
             f"fingerprint {d['fingerprint']}",
             f"  partitions   {len(parts)}" + (f": {parts[0]['name']} .. {parts[-1]['name']}" if parts else ""),
             f"  code         spec {c['spec_hash']}, code {c['code_version']}, git {c['git_sha']}, "
             f"image {c['image_digest']}",
             "  validation   " + (("passed" if v.get("success") else "FAILED") + f", {v.get('evaluated')} "
                                  f"expectations, warnings: {', '.join(v.get('warnings') or []) or 'none'}"
                                  if v else "(no result attached)")]
    used = lineage["cost"]
    lines.append("  cost         " + (f"{used['wall_seconds'] / 60:.1f} min on {used['pool']}, "
                                      f"{used['gpu_seconds'] / 3600:.2f} GPU-h, about {used['estimate']:.2f} "
                                      f"{used['currency']}" if used else "(not recorded)"))
    for p in lineage["promotions"]:
        by = f", approved by {p['approved_by']}" if p["approved_by"] else ""
        lines.append(f"  promoted     {p['time'][:19]} {p['action']} by {p['actor']}{by}: {p['reason']}")
    for ap in lineage["approvals"]:
        lines.append(f"  approval     {ap['gate']} {ap['verdict']} by {ap['by'] or '(timeout)'} at "
                     f"{ap['responded_at']}" + (f": {ap['comment']!r}" if ap["comment"] else ""))
    for dep in lineage["deploys"]:
        lines.append(f"  deploy       {dep['started'][:19]} {dep['verdict']} on {dep['backend']} at "
                     f"{dep['endpoint'] or '-'} (from v{dep['from_version'] or '-'}, by {dep['actor']})")
    for s in lineage["served"]:
        lines.append(f"  served       {s['from']} .. {s['to']}")
    if not lineage["promotions"]:
        lines.append("  promoted     never")
    return lines
