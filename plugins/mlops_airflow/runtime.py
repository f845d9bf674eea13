"""Reading what a task needs from the Airflow context, in one place."""

from __future__ import annotations

from datetime import datetime

from mlops.train import RunContext


def _iso(value) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


def run_context(context, upstream: dict | None = None) -> RunContext:
    """The run's identity and data interval; `upstream` (validate_data's summary) pins the window."""
    ti = context["ti"]
    upstream = upstream or {}
    return RunContext(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        logical_date=_iso(context.get("logical_date")),
        data_interval_start=_iso(context.get("data_interval_start")),
        data_interval_end=_iso(context.get("data_interval_end")),
        try_number=int(ti.try_number or 1),
        window_last_day=upstream.get("window_last_day"),
        window_anchor=upstream.get("window_anchor"),
        expected_fingerprint=upstream.get("fingerprint"),
    )


def hyperparameter_overrides(params, hyperparameters: dict) -> dict:
    """Trigger-form values that differ from the spec (typed params named `hp_<name>`)."""
    out = {}
    for name, default in hyperparameters.items():
        value = params.get(f"hp_{name}", default)
        if value is not None and value != default:  # a cleared form field means "the spec's value"
            out[name] = value
    return out


def actor(context) -> str:
    ti = context["ti"]
    return f"airflow:{ti.dag_id}/{ti.run_id}"
