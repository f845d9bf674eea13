"""The fleet at a glance: for every model, its champion and previous champion, how and when they got there,
the last data validation and the last drift check. No Airflow here: the plugin adds what only Airflow knows
(the next scheduled run, who may see which model) and renders it.

Sources: the specs (`include/models`), MLflow (aliases, model version tags, run metrics, the monitor's
runs), the audit log (who moved the alias, when and why) and the validation reports on disk.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mlops.settings import Settings
from mlops.spec import ModelSpec, SpecError, dag_id, load_spec, spec_paths

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion

    from mlops.audit import AuditRecord

DATA_DOCS = "data_docs"  # <reports_dir>/<model>/data_docs: the model's GX Data Docs site
VALIDATION_FILE = "validation.json"  # <reports_dir>/<model>/<run label>/validation.json


# --- MLflow UI addresses (the UI routes are hash routes: `#/runs/<id>` finds the run's experiment itself) ---

def mlflow_run_url(settings: Settings, run_id: str | None) -> str:
    return f"{settings.mlflow_ui_url}/#/runs/{quote(run_id, safe='')}" if run_id else ""


def mlflow_model_version_url(settings: Settings, model: str | None, version: str | int | None) -> str:
    if not model or version in (None, ""):
        return ""
    return f"{settings.mlflow_ui_url}/#/models/{quote(model, safe='')}/versions/{quote(str(version), safe='')}"


def mlflow_model_url(settings: Settings, model: str) -> str:
    return f"{settings.mlflow_ui_url}/#/models/{quote(model, safe='')}"


def mlflow_experiment_url(settings: Settings, experiment_id: str | None) -> str:
    return f"{settings.mlflow_ui_url}/#/experiments/{quote(experiment_id, safe='')}" if experiment_id else ""


def data_docs_dir(settings: Settings, model: str) -> Path:
    return Path(settings.reports_dir) / model / DATA_DOCS


def data_docs_relative(settings: Settings, model: str, page: str | Path) -> str | None:
    """A Data Docs page's path inside the model's site (what the fleet app serves), or None if outside."""
    base = data_docs_dir(settings, model).resolve()
    try:
        return Path(page).resolve().relative_to(base).as_posix()
    except ValueError:
        return None


# --- per model -------------------------------------------------------------------------------------------

def _iso_ms(millis: int | None) -> str | None:
    if not millis:
        return None
    return datetime.fromtimestamp(millis / 1000, tz=timezone.utc).isoformat(timespec="seconds")


def version_summary(settings: Settings, spec: ModelSpec, mv: ModelVersion, client: MlflowClient,
                    audit_records: list[AuditRecord]) -> dict[str, Any]:
    """One registered version as the fleet shows it: metric, data, the run that trained it, and the audit
    record that made it what it is (the newest alias move to this version)."""
    from mlops import tracking

    metric = spec.evaluation.primary_metric
    try:
        value = client.get_run(mv.run_id).data.metrics.get(metric) if mv.run_id else None
    except Exception:  # noqa: BLE001 - a deleted run must not break the page
        value = None
    tags = mv.tags or {}
    moved = [r for r in audit_records if r.alias == spec.promotion.alias and r.to_version == str(mv.version)]
    last = moved[-1] if moved else None
    return {
        "version": str(mv.version),
        "metric": metric,
        "value": value,
        "window_first_day": tags.get(tracking.WINDOW_FIRST),
        "window_last_day": tags.get(tracking.WINDOW_LAST),
        "data_interval_start": tags.get(tracking.INTERVAL_START),
        "data_interval_end": tags.get(tracking.INTERVAL_END),
        "fingerprint": tags.get(tracking.FINGERPRINT),
        "mlflow_run_id": mv.run_id,
        "trained_by_dag_id": tags.get(tracking.DAG_ID),
        "trained_by_run_id": tags.get(tracking.RUN_ID),
        "registered_at": _iso_ms(getattr(mv, "creation_timestamp", None)),
        "promoted_at": last.time if last else None,
        "promoted_by": last.actor if last else None,
        "promotion_action": last.action if last else None,
        "promotion_reason": last.reason if last else None,
        "explanation": _explanation(tags.get(tracking.EXPLANATION)),
        "sweep": _sweep_links(settings, tags),
        "mlflow_run_url": mlflow_run_url(settings, mv.run_id),
        "mlflow_version_url": mlflow_model_version_url(settings, spec.name, mv.version),
    }


def _sweep_links(settings: Settings, tags: dict[str, str]) -> dict[str, Any] | None:
    """The sweep that chose a version's parameters, and its best trial (None: the form's or the spec's)."""
    from mlops import tracking

    if not tags.get(tracking.SWEEP_RUN):
        return None
    return {"study": tags.get(tracking.SWEEP_STUDY), "best_trial": tags.get(tracking.SWEEP_BEST_TRIAL),
            "run_url": mlflow_run_url(settings, tags[tracking.SWEEP_RUN]),
            "best_trial_url": mlflow_run_url(settings, tags.get(tracking.SWEEP_BEST_RUN))}


def last_sweep(settings: Settings, client: MlflowClient, exp_id: str | None) -> dict[str, Any] | None:
    """The model's newest sweep: its study, state, trials and best value so far, and where to see it."""
    from mlops import tracking

    if exp_id is None:
        return None
    try:
        runs = client.search_runs([exp_id], filter_string=f"tags.`{tracking.KIND}` = 'sweep'",
                                  order_by=["attributes.start_time DESC"], max_results=1)
    except Exception:  # noqa: BLE001 - the page shows what it can
        return None
    if not runs:
        return None
    run = runs[0]
    metrics = run.data.metrics
    return {"study": run.data.tags.get(tracking.SWEEP_STUDY), "status": run.info.status,
            "best_value": metrics.get("best_value"), "metric": run.data.params.get("metric"),
            "trials_complete": int(metrics.get("trials_complete", 0)),
            "trials_pruned": int(metrics.get("trials_pruned", 0)), "trials_failed": int(metrics.get("trials_fail", 0)),
            "trials_target": int(metrics.get("trials_target", 0)),
            "best_trial": run.data.tags.get(tracking.SWEEP_BEST_TRIAL),
            "started_at": _iso_ms(run.info.start_time), "run_url": mlflow_run_url(settings, run.info.run_id),
            "best_trial_url": mlflow_run_url(settings, run.data.tags.get(tracking.SWEEP_BEST_RUN))}


def _explanation(tag: str | None) -> dict[str, float] | None:
    """The version's top features by permutation importance (its tag), None when it has none."""
    if not tag:
        return None
    try:
        values = json.loads(tag)
    except ValueError:
        return None
    return {str(k): float(v) for k, v in values.items()} if isinstance(values, dict) else None


def last_validation(settings: Settings, model: str) -> dict[str, Any] | None:
    """The newest validation result on disk for the model (training window or monitored batch)."""
    root = Path(settings.reports_dir) / model
    if not root.is_dir():
        return None
    results = [p for p in root.glob(f"*/{VALIDATION_FILE}") if p.parent.name != DATA_DOCS]
    if not results:
        return None
    newest = max(results, key=lambda p: p.stat().st_mtime)
    try:
        summary = json.loads(newest.read_text()).get("summary", {})
    except (OSError, ValueError):
        summary = {}
    docs_index = data_docs_dir(settings, model) / "index.html"
    return {
        "label": newest.parent.name,  # the Airflow run id, without ':' and '+'
        "time": datetime.fromtimestamp(newest.stat().st_mtime, tz=timezone.utc).isoformat(timespec="seconds"),
        "success": summary.get("success"),
        "evaluated": summary.get("evaluated"),
        "blocking_failures": summary.get("blocking_failures", []),
        "warnings": summary.get("warnings", []),
        "result_path": str(newest),
        "data_docs": "index.html" if docs_index.is_file() else None,
    }


def last_drift(settings: Settings, spec: ModelSpec, client: MlflowClient,
               experiment_id: str | None) -> dict[str, Any] | None:
    """The newest monitoring check (by data day) over the monitor's runs, one run per champion version."""
    from mlops import tracking
    from mlops.monitoring import CHECK_TAG, KIND_MONITOR, VERSION_TAG

    if experiment_id is None:
        return None
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{tracking.KIND}` = '{KIND_MONITOR}'",
                              max_results=1000)
    best: tuple[str, Run, str] | None = None
    for run in runs:
        for key, value in run.data.tags.items():
            if not key.startswith(CHECK_TAG):
                continue
            day = key[len(CHECK_TAG):]
            if best is None or (day, run.info.start_time or 0) > (best[0], best[1].info.start_time or 0):
                best = (day, run, value)
    if best is None:
        return None
    day, run, value = best
    try:
        record = json.loads(value)
    except ValueError:
        record = {}
    bad, alarmed = bool(record.get("bad")), bool(record.get("alarmed"))
    return {
        "day": day,
        "status": "alarm" if alarmed else ("bad" if bad else "ok"),
        "bad": bad,
        "alarmed": alarmed,
        "reasons": list(record.get("reasons", [])),
        "champion_version": run.data.tags.get(VERSION_TAG),
        "monitor_run_id": run.info.run_id,
        "mlflow_run_url": mlflow_run_url(settings, run.info.run_id),
    }


def model_status(settings: Settings, spec: ModelSpec) -> dict[str, Any]:
    """Everything the fleet page shows about one model that MLflow, the audit log and the reports know."""
    from mlops import tracking
    from mlops.audit import AuditLog

    client = tracking.client(settings)
    exp = client.get_experiment_by_name(f"mlops/{spec.name}")
    exp_id = exp.experiment_id if exp is not None else None
    audit = AuditLog(settings.audit_root, spec.name).records()
    out: dict[str, Any] = {
        "model": spec.name,
        "description": spec.description,
        "owner": spec.owner,
        "tags": list(spec.tags),
        "schedule": spec.schedule,
        "task": spec.dataset.task,
        "backend": spec.compute.backend,
        "primary_metric": spec.evaluation.primary_metric,
        "dag_ids": {"train": spec.dag_id, "score": spec.score_dag_id, "monitor": spec.monitor_dag_id,
                    **({"deploy": spec.deploy_dag_id} if spec.serving is not None else {}),
                    **({"tune": spec.tune_dag_id} if spec.tuning is not None else {})},
        "mlflow_model_url": mlflow_model_url(settings, spec.name),
        "mlflow_experiment_url": mlflow_experiment_url(settings, exp_id),
        "champion": None,
        "previous_champion": None,
        "last_audit": None,
        "last_validation": last_validation(settings, spec.name),
        "last_drift": None,
        "error": None,
    }
    for key, alias in (("champion", spec.promotion.alias), ("previous_champion", spec.promotion.previous_alias)):
        mv = tracking.version_by_alias(settings, spec.name, alias)
        if mv is not None:
            out[key] = {"alias": alias, **version_summary(settings, spec, mv, client, audit)}
    if audit:
        rec = audit[-1]
        out["last_audit"] = {"time": rec.time, "alias": rec.alias, "from_version": rec.from_version,
                             "to_version": rec.to_version, "action": rec.action, "actor": rec.actor,
                             "reason": rec.reason}
    out["approvals"] = approvals(settings, spec)
    out["cost"] = cost_status(settings, spec)
    out["last_drift"] = last_drift(settings, spec, client, exp_id)
    out["last_sweep"] = last_sweep(settings, client, exp_id) if spec.tuning is not None else None
    out["serving"] = serving_status(settings, spec)
    return out


def approvals(settings: Settings, spec: ModelSpec, newest: int = 5) -> dict[str, Any] | None:
    """Who may approve this model's promotions and deployments, and the newest answers (None: no gate)."""
    gates = {"promotion": spec.promotion.approval, "deployment": spec.serving.approval if spec.serving else None}
    if not any(gates.values()):
        return None
    from mlops.approval import ApprovalLog

    records = ApprovalLog(settings.audit_root, spec.name).records()[-newest:]
    return {"gates": {gate: a.who() for gate, a in gates.items() if a is not None},
            "recent": [{**r.to_dict(), "says": r.says(), "approved": r.approved} for r in reversed(records)]}


def cost_status(settings: Settings, spec: ModelSpec, days: int = 30) -> dict[str, Any]:
    """GPU-hours and estimated cost of training (by why it ran) and serving over the last `days` days."""
    from mlops import cost

    return {"training": cost.training_spend(settings, spec.name, days),
            "serving": cost.serving_spend(settings, spec, days),
            "retraining_estimate": cost.retraining_estimate(settings, spec.name)}


def serving_status(settings: Settings, spec: ModelSpec) -> dict[str, Any] | None:
    """The online side: deployed version, endpoint, replicas ready and the last rollout (None: not served)."""
    if spec.serving is None:
        return None
    from mlops.serving.status import model_status as serving_model_status

    row = serving_model_status(settings, spec)
    deployed = row["deployed_version"]
    row["deployed_version_url"] = mlflow_model_version_url(settings, spec.name, deployed) if deployed else None
    return row


def broken_status(path: Path, error: str) -> dict[str, Any]:
    """A spec that does not load: shown with its problems, under the DAG id the broken-spec DAG gets."""
    name = path.stem
    return {"model": name, "description": None, "owner": None, "tags": [], "schedule": None, "task": None,
            "backend": None, "primary_metric": None,
            "dag_ids": {"train": dag_id(name, "train"), "score": None, "monitor": None},
            "mlflow_model_url": "", "mlflow_experiment_url": "", "champion": None, "previous_champion": None,
            "last_audit": None, "last_validation": None, "last_drift": None, "serving": None, "approvals": None,
            "cost": None, "error": error}


def model_names(settings: Settings) -> list[str]:
    """Every model the specs folder names (valid or not), cheaply: the file stems."""
    return [p.stem for p in spec_paths(settings.models_dir)]


def fleet_status(settings: Settings, names: set[str] | None = None) -> list[dict[str, Any]]:
    """Every model (or only `names`), sorted by name. A model whose store cannot be read carries `error`
    instead of failing the whole fleet."""
    out = []
    for path in spec_paths(settings.models_dir):
        if names is not None and path.stem not in names:
            continue
        try:
            spec = load_spec(path, settings.expectations_dir)
        except SpecError as exc:
            out.append(broken_status(path, str(exc)))
            continue
        try:
            out.append(model_status(settings, spec))
        except Exception as exc:  # noqa: BLE001 - one unreadable model must not hide the others
            status = broken_status(path, f"{type(exc).__name__}: {exc}")
            out.append({**status, "description": spec.description, "owner": spec.owner,
                        "dag_ids": {"train": spec.dag_id, "score": spec.score_dag_id,
                                    "monitor": spec.monitor_dag_id}})
    return sorted(out, key=lambda m: m["model"])
