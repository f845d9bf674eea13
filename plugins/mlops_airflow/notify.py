"""Mail about a model's events through Airflow's notifier interface and the SMTP provider.

DAG construction stays one line per task:

    ValidateDataOperator(..., on_failure_callback=notify.callbacks(spec, "validation_failed"))
    PromoteModelOperator(..., on_success_callback=notify.callbacks(spec, "promoted"))

`callbacks` returns an empty list when the spec's `notifications` section does not ask for the event,
so a model without recipients gets no callback at all. The events and the task state they follow:

| event | task | callback | why it only fires on the event |
|---|---|---|---|
| validation_failed | validate_data, validate_batch | on_failure_callback | final failure only (bad data is not retried) |
| promoted | promote | on_success_callback | promote is skipped unless the alias moved |
| drift_alarm | request_retraining | on_success_callback | skipped unless the alarm fired |
| rolled_back | rollback | on_success_callback | the rollback task's own contract |

The message is composed from the context when the callback runs: model, DAG, run and task, a link to the
task when `[api] base_url` is set, and per event what happened (the exception text of a failed gate, the
versions and reasons of a promotion or rollback from the task's XCom, the alarm's reasons). Sending goes
through `SmtpNotifier` and the spec's SMTP connection. A notification that cannot be sent is logged and
never changes the task's outcome.

Only `airflow.sdk` and the spec are imported here; the SMTP provider is imported when a mail goes out.
"""

from __future__ import annotations

import html
import logging
from urllib.parse import quote

from airflow.sdk import BaseNotifier

from mlops.spec import NOTIFICATION_EVENTS, ModelSpec, asset_uri, dag_id

log = logging.getLogger(__name__)

SUBJECT_PREFIX = "[mlops]"
# Which task state each event follows: DAG code passes the callbacks under this keyword.
CALLBACK_KIND = {"validation_failed": "on_failure_callback", "promoted": "on_success_callback",
                 "drift_alarm": "on_success_callback", "rolled_back": "on_success_callback"}


def callbacks(spec: ModelSpec, event: str) -> list[BaseNotifier]:
    """The notifiers for one event of one model, for the task's `CALLBACK_KIND[event]` keyword:
    one notifier when the spec's `notifications` lists recipients and the event, else none."""
    settings = spec.notifications
    if not settings.wants(event):  # refuses unknown event names
        return []
    return [ModelEventNotifier(model=spec.name, event=event, to=list(settings.email),
                               smtp_conn_id=settings.smtp_conn_id)]


class ModelEventNotifier(BaseNotifier):
    """One mail per event of a model, composed from the task's context and sent through the SMTP provider.

    Nothing here is rendered as a Jinja template: exception texts and reasons may contain braces."""

    template_fields = ()

    def __init__(self, *, model: str, event: str, to: list[str], smtp_conn_id: str = "smtp_default"):
        super().__init__()
        if event not in NOTIFICATION_EVENTS:
            raise ValueError(f"unknown notification event '{event}'; use one of {NOTIFICATION_EVENTS}")
        self.model, self.event, self.to, self.smtp_conn_id = model, event, list(to), smtp_conn_id

    def __repr__(self) -> str:
        return f"ModelEventNotifier({self.model!r}, {self.event!r}, to={self.to!r})"

    def notify(self, context) -> None:
        try:
            subject, lines = compose(self.event, self.model, context)
        except Exception:  # noqa: BLE001 - a notification must never fail the task
            log.warning("%s: composing the %s notification failed; sending a short one", self.model, self.event,
                        exc_info=True)
            subject, lines = f"{SUBJECT_PREFIX} {self.model}: {self.event.replace('_', ' ')}", _where(context)
        try:
            self.send(subject, lines, context)
        except Exception as exc:  # noqa: BLE001 - a notification must never fail the task
            log.warning("%s: the %s notification to %s was not sent: %s", self.model, self.event,
                        ", ".join(self.to), _why(exc, self.smtp_conn_id),
                        exc_info=not _is_missing_connection(exc))
        else:
            log.info("%s: %s notification sent to %s", self.model, self.event, ", ".join(self.to))

    def send(self, subject: str, lines: list[str], context) -> None:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        # A fresh provider notifier per mail: it fills in its own fields while sending.
        SmtpNotifier(
            to=self.to, from_email=_sender(self.smtp_conn_id), subject=subject, html_content=as_html(lines),
            smtp_conn_id=self.smtp_conn_id,
            custom_headers={"X-Mlops-Model": self.model, "X-Mlops-Event": self.event},
        ).notify(context)


# --- composing ---------------------------------------------------------------------------------------

def compose(event: str, model: str, context) -> tuple[str, list[str]]:
    """Subject and body lines of the mail for `event`, from a task callback's context."""
    return _COMPOSERS[event](model, context)


def _validation_failed(model: str, context) -> tuple[str, list[str]]:
    ti = context["ti"]
    error = context.get("exception")
    body = [f"{model}: the validation gate {ti.task_id} of {ti.dag_id} failed. The run stopped here; the champion "
            "is unchanged and the next steps did not run.", ""]
    body += str(error).splitlines() if error is not None else ["(no exception text: see the task log)"]
    return f"{SUBJECT_PREFIX} {model}: data validation failed ({ti.dag_id})", body + [""] + _where(context)


def _promoted(model: str, context) -> tuple[str, list[str]]:
    ti = context["ti"]
    result = _own_return(context)
    to_version, from_version = result.get("champion"), result.get("previous")
    task = context.get("task")
    summary = ti.xcom_pull(task_ids=getattr(task, "evaluate_task_id", "evaluate")) or {}
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
    return subject, body + [""] + _where(context)


def _drift_alarm(model: str, context) -> tuple[str, list[str]]:
    extra = _own_return(context)
    day, version = extra.get("day", "?"), extra.get("champion_version")
    body = [f"{model}: the monitor fired the drift alarm for {day} (champion {_v(version)}) and asked for "
            f"retraining: the event on {asset_uri(model, 'retrain-requested')} starts {dag_id(model, 'train')} on the "
            "newest complete window (unless that DAG is paused).", "", "What was bad:"]
    body += [f"  - {r}" for r in extra.get("reasons") or ["(not recorded)"]]
    body += ["", "Why the alarm fired:", *[f"  - {r}" for r in extra.get("alarm") or ["(not recorded)"]]]
    if extra.get("monitor_run_id"):
        body += ["", f"MLflow monitoring run: {extra['monitor_run_id']} (report: checks/{day}/report.html)"]
    return f"{SUBJECT_PREFIX} {model}: drift alarm on {day}, retraining requested", body + [""] + _where(context)


def _rolled_back(model: str, context) -> tuple[str, list[str]]:
    result = _own_return(context)
    to_version = result.get("to_version") or result.get("champion")
    from_version = result.get("from_version") or result.get("previous")
    reason, actor = result.get("reason"), result.get("actor")
    if not reason or not actor:
        record = _audit_record(model, result.get("audit_id"))
        reason = reason or getattr(record, "reason", None)
        actor = actor or getattr(record, "actor", None)
    params = context.get("params") or {}
    reason = reason or params.get("reason") or "(no reason recorded)"
    body = [result.get("message") or f"{model}: champion rolled back {_v(from_version)} -> {_v(to_version)}",
            f"Champion now: {_v(to_version)}; rolled back from: {_v(from_version)}.", f"Reason: {reason}"]
    if actor:
        body.append(f"By: {actor}")
    if result.get("audit_id"):
        body.append(f"Audit record: {result['audit_id']} (python -m mlops.registry audit {model})")
    subject = f"{SUBJECT_PREFIX} {model}: champion rolled back {_v(from_version)} -> {_v(to_version)}"
    return subject, body + [""] + _where(context)


_COMPOSERS = {"validation_failed": _validation_failed, "promoted": _promoted, "drift_alarm": _drift_alarm,
              "rolled_back": _rolled_back}


def _where(context) -> list[str]:
    ti = context["ti"]
    lines = [f"Task: {ti.dag_id} / {ti.task_id}", f"Run: {ti.run_id}"]
    try_number, max_tries = getattr(ti, "try_number", None), getattr(ti, "max_tries", None)
    if try_number:
        lines[-1] += f" (try {try_number}" + (f" of {max_tries + 1})" if max_tries is not None else ")")
    for key, label in (("logical_date", "Logical date"), ("data_interval_end", "Data interval end")):
        if context.get(key) is not None:
            lines.append(f"{label}: {context[key]}")
    url = task_url(ti)
    if url:
        lines.append(f"In Airflow: {url}")
    return lines


def task_url(ti) -> str | None:
    """The task instance's page in the Airflow UI, when `[api] base_url` says where that is."""
    from airflow.sdk.configuration import conf

    base = conf.get("api", "base_url", fallback=None)
    if not base:
        return None
    url = f"{base.rstrip('/')}/dags/{quote(ti.dag_id)}/runs/{quote(ti.run_id, safe='')}/tasks/{quote(ti.task_id)}"
    map_index = getattr(ti, "map_index", None)
    return url + (f"/mapped/{map_index}" if map_index is not None and map_index >= 0 else "")


def as_html(lines: list[str]) -> str:
    """Plain text in a <pre> (exception texts are laid out in lines), links clickable."""
    out = []
    for line in lines:
        escaped = html.escape(line)
        if line.startswith("In Airflow: "):
            url = html.escape(line.removeprefix("In Airflow: "), quote=True)
            escaped = f'In Airflow: <a href="{url}">{url}</a>'
        out.append(escaped)
    return "<pre style=\"font-family: monospace\">" + "\n".join(out) + "</pre>"


def _own_return(context) -> dict:
    ti = context["ti"]
    value = ti.xcom_pull(task_ids=ti.task_id)
    return value if isinstance(value, dict) else {}


def _metrics(new: dict | None, old: dict | None) -> list[str]:
    new, old = new or {}, old or {}

    def fmt(value):
        return f"{value:.4f}" if isinstance(value, (int, float)) and value == value else "-"

    return [f"  {name}: {fmt(new.get(name))} / {fmt(old.get(name))}" for name in sorted(set(new) | set(old))]


def _audit_record(model: str, audit_id: str | None):
    if not audit_id:
        return None
    from mlops.audit import AuditLog
    from mlops.settings import get_settings

    return next((r for r in AuditLog(get_settings().audit_root, model).records() if r.id == audit_id), None)


def _v(version) -> str:
    return f"v{version}" if version not in (None, "") else "(none)"


# --- sending -----------------------------------------------------------------------------------------

def _sender(conn_id: str) -> str | None:
    """The connection's `from_email` wins (None lets the provider take it); else `[email] from_email`."""
    from airflow.sdk import BaseHook
    from airflow.sdk.configuration import conf

    if BaseHook.get_connection(conn_id).extra_dejson.get("from_email"):
        return None
    return conf.get("email", "from_email", fallback=None) or None


def _is_missing_connection(exc: BaseException) -> bool:
    return type(exc).__name__ == "AirflowNotFoundException"


def _why(exc: BaseException, conn_id: str) -> str:
    if _is_missing_connection(exc):
        return (f"there is no Airflow connection '{conn_id}'; define it (e.g. AIRFLOW_CONN_"
                f"{conn_id.upper()} as JSON with conn_type smtp) or change notifications.smtp_conn_id")
    if "from_email" in str(exc):
        return (f"{exc} (set from_email in the extra of the connection '{conn_id}' or [email] from_email in "
                "the Airflow configuration)")
    return f"{type(exc).__name__}: {exc}"
