"""One monitoring check of a model: drift of the newest batch against the champion's reference profile,
quality on the labels that have arrived, and the alarm decision (mlops.drift.alarm).

Every check is logged to one MLflow run per champion version ("monitor v<N>"), with metrics stepped by
data day (so MLflow charts them over time), the check's JSON and an HTML report as artifacts, and a tag
per checked day that the next checks read as their history. The reference profile is the one stored
with the champion at training: monitoring never reloads training data.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from mlops.drift.alarm import Check, columns_verdict, decide
from mlops.drift.compare import Thresholds
from mlops.scoring import Champion, champion_of, partition_day, predictions_uri, read_partition
from mlops.settings import Settings
from mlops.spec import ModelSpec

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

KIND_MONITOR = "monitor"
CHECK_TAG = "mlops.monitor.check."  # + ISO day -> {"bad": .., "alarmed": .., "reasons": [..]}
VERSION_TAG = "mlops.monitor.champion_version"


def thresholds_of(spec: ModelSpec) -> Thresholds:
    return Thresholds(**spec.monitoring.thresholds.model_dump())


def quality_check(spec: ModelSpec, settings: Settings, day: date, champion: Champion,
                  client: MlflowClient) -> dict[str, Any]:
    """The champion's metric on the day whose labels have arrived, against its holdout metric at training."""
    from mlops import data
    from mlops.metrics import METRICS, compute_all

    q = spec.monitoring.quality
    metric = q.metric or spec.evaluation.primary_metric
    labelled_day = day - timedelta(days=q.label_delay_days)
    out: dict[str, Any] = {"metric": metric, "labelled_day": labelled_day.isoformat(), "status": "no_labels",
                           "degraded": False}
    if not q.labels_uri:
        out["status"] = "not_configured"
        return out
    labels_uri = q.labels_uri.format(data_root=settings.data_root.rstrip("/"), date=labelled_day.isoformat())
    preds_uri = predictions_uri(spec, settings, labelled_day)
    for uri, status in ((labels_uri, "no_labels"), (preds_uri, "no_predictions")):
        fs, path = data._filesystem(uri)
        if not fs.exists(path):
            out["status"] = status
            return out
    joined = data._read(preds_uri, "parquet").merge(data._read(labels_uri, "parquet"), on="row", how="inner")
    joined = joined.dropna(subset=[spec.dataset.target])
    out["rows"] = len(joined)
    if len(joined) < q.min_labelled_rows:
        out["status"] = "too_few_labels"
        return out
    value = compute_all(spec.dataset.task, joined[spec.dataset.target].to_numpy(),
                        joined["prediction"].to_numpy())[metric]
    reference = client.get_run(champion.run_id).data.metrics.get(metric)
    higher = METRICS[metric].higher_is_better
    degradation = (reference - value if higher else value - reference) if reference is not None else 0.0
    out.update(status="measured", value=value, reference=reference, degradation=degradation,
               models=sorted(set(joined["model_version"].astype(str))),
               degraded=bool(reference is not None and degradation > q.max_degradation))
    return out


def monitoring_run(spec: ModelSpec, settings: Settings, champion: Champion, client: MlflowClient) -> str:
    """The champion version's monitoring run, created on its first check."""
    from mlops import tracking

    exp = tracking.experiment_id(settings, spec.name)
    found = client.search_runs([exp], filter_string=f"tags.`{tracking.KIND}` = '{KIND_MONITOR}' and "
                                                    f"tags.`{VERSION_TAG}` = '{champion.version}'", max_results=1)
    # RunInfo.run_id is a str, but MLflow's untyped @searchable_attribute hides that from mypy.
    run_id: str
    if found:
        run_id = found[0].info.run_id
        return run_id
    run = client.create_run(exp, run_name=f"monitor v{champion.version}", tags={
        tracking.KIND: KIND_MONITOR, VERSION_TAG: champion.version, tracking.MODEL: spec.name,
        "mlflow.runName": f"monitor v{champion.version}"})
    run_id = run.info.run_id
    return run_id


def history_of(run: Run) -> list[Check]:
    checks = []
    for key, value in run.data.tags.items():
        if key.startswith(CHECK_TAG):
            record = json.loads(value)
            checks.append(Check(date.fromisoformat(key[len(CHECK_TAG):]), record["bad"], record["alarmed"],
                                tuple(record.get("reasons", ()))))
    return checks


def run_check(spec: ModelSpec, settings: Settings, data_interval_end: datetime | None,
              run_label: str) -> dict[str, Any]:
    from mlops import tracking
    from mlops.drift.profile import compare_to_profile
    from mlops.drift.report import render_html

    client = tracking.client(settings)
    champion = champion_of(spec, settings)
    import mlflow

    profile = mlflow.artifacts.load_dict(f"runs:/{champion.run_id}/{tracking.REFERENCE_PROFILE}")
    day = partition_day(spec, settings, data_interval_end)
    frame = read_partition(spec, settings, day)
    results = compare_to_profile(profile, frame, thresholds_of(spec))
    ignored = {c for c, v in spec.monitoring.columns.items() if v == "ignore"}
    drifted = [r.column for r in results if r.drifted and r.column not in ignored]
    drift_bad, drift_why = columns_verdict(drifted, spec.monitoring.columns, spec.monitoring.min_normal_columns)
    quality = quality_check(spec, settings, day, champion, client)
    reasons = [drift_why] if drift_bad else []
    if quality["degraded"]:
        reasons.append(f"{quality['metric']} {quality['value']:.4g} on {quality['labelled_day']} is "
                       f"{quality['degradation']:.4g} worse than at training ({quality['reference']:.4g})")
    check = Check(day, drift_bad or quality["degraded"], reasons=tuple(reasons))

    run_id = monitoring_run(spec, settings, champion, client)
    m = spec.monitoring
    alarm = decide(check, history_of(client.get_run(run_id)), persistence=m.persistence, window=m.window,
                   cooldown_days=m.cooldown_days, champion_window_last=champion.window_last_day)
    record = {"model": spec.name, "day": day.isoformat(), "run_label": run_label, "champion_version": champion.version,
              "champion_window_last_day": champion.window_last_day.isoformat() if champion.window_last_day else None,
              "rows": len(frame), "drifted_columns": drifted, "ignored_columns": sorted(ignored),
              "ignored_columns_drifted": [r.column for r in results if r.drifted and r.column in ignored],
              "drift_verdict": drift_why, "bad": check.bad,
              "reasons": reasons, "quality": quality, "alarm": alarm.fire, "alarm_reasons": alarm.reasons,
              "columns": [r.to_dict() for r in results], "monitor_run_id": run_id}
    _log(client, run_id, day, record, render_html(record, profile, frame))
    return record


def _log(client: MlflowClient, run_id: str, day: date, record: dict[str, Any], html: str) -> None:
    from mlflow.entities import Metric

    step = day.toordinal()
    stamp = int(datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc).timestamp() * 1000)
    metrics = [Metric("drift.columns_drifted", float(len(record["drifted_columns"])), stamp, step),
               Metric("drift.alarm", float(record["alarm"]), stamp, step),
               Metric("rows", float(record["rows"]), stamp, step)]
    for col in record["columns"]:
        for name, value in col["statistics"].items():
            if isinstance(value, (int, float)) and value == value:
                metrics.append(Metric(f"drift.{col['column']}.{name}", float(value), stamp, step))
    if record["quality"].get("status") == "measured":
        metrics.append(Metric(f"quality.{record['quality']['metric']}", float(record["quality"]["value"]), stamp, step))
    client.log_batch(run_id, metrics=metrics)
    summary = {"bad": record["bad"], "alarmed": record["alarm"], "reasons": record["reasons"]}
    client.set_tag(run_id, f"{CHECK_TAG}{day.isoformat()}", json.dumps(summary))
    client.log_text(run_id, json.dumps(record, indent=2, default=str), f"checks/{day.isoformat()}/check.json")
    client.log_text(run_id, html, f"checks/{day.isoformat()}/report.html")

