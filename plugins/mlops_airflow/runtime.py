"""Reading what a task needs from the Airflow context, in one place."""

from __future__ import annotations

from datetime import datetime

from mlops.train import RunContext


def _iso(value) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


def data_interval_end(context):
    """The run's data interval end, or None for runs that should take the newest data: asset-triggered
    runs (a retraining request means "now") and runs without an interval."""
    dag_run = context.get("dag_run")
    if dag_run is not None and str(getattr(dag_run.run_type, "value", dag_run.run_type)) == "asset_triggered":
        return None
    return context.get("data_interval_end")


def run_context(context, upstream: dict | None = None) -> RunContext:
    """The run's identity and data interval; `upstream` (validate_data's summary) pins the window."""
    ti = context["ti"]
    upstream = upstream or {}
    return RunContext(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        logical_date=_iso(context.get("logical_date")),
        data_interval_start=_iso(context.get("data_interval_start")),
        data_interval_end=_iso(data_interval_end(context)),
        try_number=int(ti.try_number or 1),
        window_last_day=upstream.get("window_last_day"),
        window_anchor=upstream.get("window_anchor"),
        expected_fingerprint=upstream.get("fingerprint"),
    )


def trigger_conf(context) -> dict:
    """What the trigger sent (the DAG run's conf): unlike `params`, no defaults merged in, so a key that
    names no field can be told apart."""
    dag_run = context.get("dag_run")
    return dict(getattr(dag_run, "conf", None) or {})


def hyperparameter_overrides(params, hyperparameters: dict) -> dict:
    """Trigger-form values that differ from the spec (typed params named `hp_<name>`)."""
    out = {}
    for name, default in hyperparameters.items():
        value = params.get(f"hp_{name}", default)
        if value is not None and value != default:  # a cleared form field means "the spec's value"
            out[name] = value
    return out


def training_request(context, spec, upstream: dict, chosen_task_id: str | None = None) -> tuple[RunContext, dict]:
    """The train task's run context and hyperparameter overrides: the trigger form's, or (in a sweep) the best
    trial's parameters from `chosen_task_id`, with the sweep named so the version links back to it."""
    from dataclasses import replace

    ctx = run_context(context, upstream)
    if chosen_task_id is None:
        return ctx, hyperparameter_overrides(context["params"], spec.trainer.hyperparameters)
    chosen = context["ti"].xcom_pull(task_ids=chosen_task_id) or {}
    if "params" not in chosen:
        raise ValueError(f"{spec.name}: {chosen_task_id} returned no parameters; clear it to choose them again")
    return replace(ctx, sweep=chosen.get("sweep")), dict(chosen["params"])


def actor(context) -> str:
    ti = context["ti"]
    return f"airflow:{ti.dag_id}/{ti.run_id}"


def run_type(context) -> str | None:
    """Why the run happened: scheduled, asset_triggered (a retraining request), backfill or manual."""
    dag_run = context.get("dag_run")
    value = getattr(dag_run, "run_type", None)
    return str(getattr(value, "value", value)) if value is not None else None


def record_training_cost(spec, context, result: dict, seconds: float, pool: str | None = None) -> dict:
    """The run's usage and estimated cost (mlops.cost) on its MLflow run and version, and in the task's result.
    Cost is bookkeeping: a failure to record it is logged, never fails the training."""
    import logging

    from mlops import cost
    from mlops.compute import catalogue_path, load_catalogue
    from mlops.settings import get_settings

    settings = get_settings()
    if not settings.compute.record_cost:
        return result
    pool = pool or (context.get("params") or {}).get("compute_pool") or spec.compute.pool
    try:
        catalogue = load_catalogue(catalogue_path(settings.compute_dir))
        used = cost.usage(catalogue, pool, spec.compute.gpus, seconds, cache_hit=bool(result.get("cache_hit")))
        cost.record_training(settings, spec.name, result, used, run_type(context))
    except Exception:  # noqa: BLE001 - see the docstring
        logging.getLogger(__name__).warning("%s: the run's cost was not recorded", spec.name, exc_info=True)
        return result
    logging.getLogger(__name__).info("%s: %s", spec.name, used.says())
    return {**result, "usage": used.to_dict()}
