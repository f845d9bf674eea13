"""What a mail about a model's event says: subject and body lines from plain data.

The Airflow notifier (mlops_airflow.notifications) gathers the data (the task, its return value, the evaluation
summary, the audit record) and sends the mail; everything here is pure, so the wording is tested without
Airflow or SMTP.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import quote

from mlops.spec import asset_uri, dag_id

SUBJECT_PREFIX = "[mlops]"


class Message(NamedTuple):
    subject: str
    lines: list[str]


@dataclass(frozen=True)
class TaskRef:
    """The task instance a notification is about."""

    dag_id: str
    task_id: str
    run_id: str
    try_number: int | None = None
    max_tries: int | None = None
    logical_date: Any = None
    data_interval_end: Any = None
    url: str | None = None  # the task's page in the Airflow UI, when known


def task_url(base_url: str | None, dag_id: str, run_id: str, task_id: str, map_index: int | None = None) -> str | None:
    """The task instance's page in the Airflow UI under `base_url` (`[api] base_url`); None without one."""
    if not base_url:
        return None
    url = f"{base_url.rstrip('/')}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}/tasks/{quote(task_id)}"
    return url + (f"/mapped/{map_index}" if map_index is not None and map_index >= 0 else "")


def where(task: TaskRef) -> list[str]:
    """The closing lines of every mail: which task, run and try, and the link to it."""
    lines = [f"Task: {task.dag_id} / {task.task_id}", f"Run: {task.run_id}"]
    if task.try_number:
        lines[-1] += f" (try {task.try_number}" + (f" of {task.max_tries + 1})" if task.max_tries is not None else ")")
    for value, label in ((task.logical_date, "Logical date"), (task.data_interval_end, "Data interval end")):
        if value is not None:
            lines.append(f"{label}: {value}")
    if task.url:
        lines.append(f"In Airflow: {task.url}")
    return lines


def fallback(model: str, event: str, task: TaskRef) -> Message:
    """The short mail sent when composing the full one failed."""
    return Message(f"{SUBJECT_PREFIX} {model}: {event.replace('_', ' ')}", where(task))


def validation_failed(model: str, task: TaskRef, error: str | None) -> Message:
    body = [f"{model}: the validation gate {task.task_id} of {task.dag_id} failed. The run stopped here; the "
            "champion is unchanged and the next steps did not run.", ""]
    body += error.splitlines() if error is not None else ["(no exception text: see the task log)"]
    return Message(f"{SUBJECT_PREFIX} {model}: data validation failed ({task.dag_id})", body + [""] + where(task))


def promoted(model: str, task: TaskRef, result: dict[str, Any], summary: dict[str, Any]) -> Message:
    """`result`: the promote task's return value; `summary`: the evaluate task's (decision and metrics)."""
    to_version, from_version = result.get("champion"), result.get("previous")
    decision = summary.get("decision") or {}
    forced = " (forced)" if decision.get("forced") else ""
    body = [result.get("message") or f"{model}: champion moved {_v(from_version)} -> {_v(to_version)}",
            f"New champion: {_v(to_version)}{forced}; previous champion: {_v(from_version)}.", "", "Reasons:"]
    body += [f"  - {r}" for r in decision.get("reasons") or ["(not recorded)"]]
    metrics = _metrics(summary.get("challenger_metrics"), summary.get("champion_metrics"))
    if metrics:
        body += ["", "Holdout metrics (new / previous champion):", *metrics]
    if result.get("audit_id"):
        body += ["", f"Audit record: {result['audit_id']} (python -m mlops.registry audit {model})"]
    subject = f"{SUBJECT_PREFIX} {model}: {_v(to_version)} promoted to champion{forced} (was {_v(from_version)})"
    return Message(subject, body + [""] + where(task))


def drift_alarm(model: str, task: TaskRef, extra: dict[str, Any]) -> Message:
    """`extra`: the retraining request's return value (the asset event's extra)."""
    day, version = extra.get("day", "?"), extra.get("champion_version")
    body = [f"{model}: the monitor fired the drift alarm for {day} (champion {_v(version)}) and asked for "
            f"retraining: the event on {asset_uri(model, 'retrain-requested')} starts {dag_id(model, 'train')} on the "
            "newest complete window (unless that DAG is paused).", "", "What was bad:"]
    body += [f"  - {r}" for r in extra.get("reasons") or ["(not recorded)"]]
    body += ["", "Why the alarm fired:", *[f"  - {r}" for r in extra.get("alarm") or ["(not recorded)"]]]
    estimate = extra.get("estimated_cost")
    if estimate:
        body += ["", f"The retraining will cost about {estimate['cost']:.2f} {estimate.get('currency') or ''} and take "
                     f"about {estimate['minutes']:.0f} min (the mean of the last {estimate['runs']} training run(s))."]
    if extra.get("monitor_run_id"):
        body += ["", f"MLflow monitoring run: {extra['monitor_run_id']} (report: checks/{day}/report.html)"]
    return Message(f"{SUBJECT_PREFIX} {model}: drift alarm on {day}, retraining requested",
                   body + [""] + where(task))


def rolled_back(model: str, task: TaskRef, result: dict[str, Any], *, reason: str | None = None,
                actor: str | None = None) -> Message:
    """`result`: the rollback task's return value; `reason` and `actor` fill in what it does not say (from the
    audit record or the trigger's params)."""
    to_version = result.get("to_version") or result.get("champion")
    from_version = result.get("from_version") or result.get("previous")
    reason = result.get("reason") or reason or "(no reason recorded)"
    actor = result.get("actor") or actor
    body = [result.get("message") or f"{model}: champion rolled back {_v(from_version)} -> {_v(to_version)}",
            f"Champion now: {_v(to_version)}; rolled back from: {_v(from_version)}.", f"Reason: {reason}"]
    if actor:
        body.append(f"By: {actor}")
    if result.get("audit_id"):
        body.append(f"Audit record: {result['audit_id']} (python -m mlops.registry audit {model})")
    subject = f"{SUBJECT_PREFIX} {model}: champion rolled back {_v(from_version)} -> {_v(to_version)}"
    return Message(subject, body + [""] + where(task))


def deployed(model: str, task: TaskRef, result: dict[str, Any]) -> Message:
    """`result`: the retire task's return value (the rollout's summary)."""
    to_version, from_version = result.get("to_version"), result.get("from_version")
    body = [f"{model}: {_v(to_version)} serves at {result.get('endpoint') or '(endpoint unknown)'} "
            f"(replacing {_v(from_version)}).", ""]
    body += _gates(result)
    if result.get("timeline"):
        body.append(f"Timeline: {result['timeline']}")
    if result.get("audit_id"):
        body.append(f"Audit record: {result['audit_id']} (python -m mlops.registry audit {model})")
    return Message(f"{SUBJECT_PREFIX} {model}: {_v(to_version)} deployed (was {_v(from_version)})",
                   body + [""] + where(task))


def deploy_rolled_back(model: str, task: TaskRef, result: dict[str, Any]) -> Message:
    """`result`: the roll_back task's return value."""
    to_version = result.get("to_version")
    failure = result.get("failure") or {}
    serving = result.get("serving") or []
    body = [result.get("message") or f"{model}: the rollout of {_v(to_version)} was rolled back.", "",
            f"Failed step: {failure.get('step', '?')}", f"Why: {failure.get('reason', '(not recorded)')}",
            f"Serving now: {', '.join(_v(v) for v in serving) or 'nothing'}", ""]
    body += _gates(result)
    return Message(f"{SUBJECT_PREFIX} {model}: rollout of {_v(to_version)} rolled back "
                   f"({failure.get('step', 'failed')})", body + [""] + where(task))


def approval_requested(model: str, task: TaskRef, subject: str, body: str, link: str | None) -> Message:
    """The request's own subject and evidence (Markdown, readable as text) and where to answer it."""
    lines = [f"{model}: your approval is requested.", ""]
    if link:
        lines += [f"Answer it in Airflow (Required actions): {link}", ""]
    lines += body.splitlines() or ["(no evidence recorded: see the task log)"]
    return Message(f"{SUBJECT_PREFIX} approval requested: {subject or model}", lines + [""] + where(task))


def _gates(result: dict[str, Any]) -> list[str]:
    lines = []
    smoke, bake = result.get("smoke"), result.get("bake")
    if smoke:
        lines.append(f"Smoke test: {smoke.get('rows')} holdout rows, largest |online - offline| "
                     f"{smoke.get('max_abs_diff', 0):.3g} (tolerance {smoke.get('tolerance', 0):g})")
    if bake:
        shift = "".join(f", {label} {bake[key]:.4f}" for key, label in (("psi", "PSI"), ("disagreement",
                        "class disagreement")) if bake.get(key) is not None)
        lines.append(f"Bake: {bake.get('requests')} requests, error rate {bake.get('error_rate', 0):.2%}, p50 "
                     f"{bake.get('p50_ms', 0):.1f} ms, p99 {bake.get('p99_ms', 0):.1f} ms{shift}")
        lines += [f"  - broke: {f}" for f in bake.get("failures") or []]
    return lines


def as_html(lines: list[str]) -> str:
    """Plain text in a <pre> (exception texts are laid out in lines), links clickable."""
    out = []
    for line in lines:
        escaped = html.escape(line)
        if line.startswith("In Airflow: ") or line.startswith("Answer it in Airflow"):
            label, _, url = line.partition(": ")
            url = html.escape(url, quote=True)
            escaped = f'{html.escape(label)}: <a href="{url}">{url}</a>'
        out.append(escaped)
    return "<pre style=\"font-family: monospace\">" + "\n".join(out) + "</pre>"


def _metrics(new: dict[str, Any] | None, old: dict[str, Any] | None) -> list[str]:
    new, old = new or {}, old or {}

    def fmt(value: object) -> str:
        return f"{value:.4f}" if isinstance(value, (int, float)) and value == value else "-"

    return [f"  {name}: {fmt(new.get(name))} / {fmt(old.get(name))}" for name in sorted(set(new) | set(old))]


def _v(version: object) -> str:
    return f"v{version}" if version not in (None, "") else "(none)"
