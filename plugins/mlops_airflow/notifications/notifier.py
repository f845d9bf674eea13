"""Mail about a model's events through Airflow's notifier interface and the SMTP provider.

DAG construction stays one line per task:

    ValidateDataOperator(..., on_failure_callback=notify.callbacks(spec, "validation_failed"))
    PromoteModelOperator(..., on_success_callback=notify.callbacks(spec, "promoted"))

`callbacks` returns an empty list when the spec's `notifications` section does not ask for the event,
so a model without recipients gets no callback at all. The events and the task state they follow:

| event | task | callback | why it only fires on the event |
|---|---|---|---|
| validation_failed | validate_data, validate_batch | on_failure_callback | final failure only (no retry of bad data) |
| promoted | promote | on_success_callback | promote is skipped unless the alias moved |
| drift_alarm | request_retraining | on_success_callback | skipped unless the alarm fired |
| rolled_back | rollback | on_success_callback | the rollback task's own contract |
| deployed | retire_old_version (deploy) | on_success_callback | the rollout's last step |
| deploy_rolled_back | roll_back (deploy) | on_success_callback | runs only when a rollout step failed |
| approval_requested | approve_promotion, approve_switch | HITL `notifiers` | sent when the request is made |

When the callback runs, the notifier gathers from the context what the mail needs: model, DAG, run and
task, a link to the task when `[api] base_url` is set, and per event what happened (the exception text of a
failed gate, the versions and reasons of a promotion or rollback from the task's XCom and the audit record,
the alarm's reasons). `mlops.notifications` composes the message from that data. Sending goes through
`SmtpNotifier` and the spec's SMTP connection. A notification that cannot be sent is logged and never
changes the task's outcome.

Only `airflow.sdk` and the core are imported here; the SMTP provider is imported when a mail goes out.
"""

from __future__ import annotations

import logging

from airflow.sdk import BaseNotifier

from mlops import notifications as messages
from mlops.spec import NOTIFICATION_EVENTS, ModelSpec

log = logging.getLogger(__name__)

# Which task state each event follows: DAG code passes the callbacks under this keyword.
CALLBACK_KIND = {"validation_failed": "on_failure_callback", "promoted": "on_success_callback",
                 "drift_alarm": "on_success_callback", "rolled_back": "on_success_callback",
                 "deployed": "on_success_callback", "deploy_rolled_back": "on_success_callback",
                 "approval_requested": "notifiers"}


def callbacks(spec: ModelSpec, event: str) -> list[BaseNotifier]:
    """The notifiers for one event of one model, for the task's `CALLBACK_KIND[event]` keyword:
    one notifier when the spec's `notifications` lists recipients and the event, else none."""
    settings = spec.notifications
    if not settings.wants(event):  # refuses unknown event names
        return []
    return [ModelEventNotifier(model=spec.name, event=event, to=list(settings.email),
                               smtp_conn_id=settings.smtp_conn_id)]


def approval_notifiers(spec: ModelSpec, approval) -> list[BaseNotifier]:
    """The HITL operator's `notifiers`: the approval's own recipients and, when the spec's notifications ask
    for approval_requested, theirs; none when that leaves nobody."""
    to = list(approval.email)
    if spec.notifications.wants("approval_requested"):
        to += [a for a in spec.notifications.email if a not in to]
    if not to:
        return []
    return [ModelEventNotifier(model=spec.name, event="approval_requested", to=to,
                               smtp_conn_id=spec.notifications.smtp_conn_id)]


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
            subject, lines = messages.fallback(self.model, self.event, _task(context))
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
            to=self.to, from_email=_sender(self.smtp_conn_id), subject=subject,
            html_content=messages.as_html(lines),
            smtp_conn_id=self.smtp_conn_id,
            custom_headers={"X-Mlops-Model": self.model, "X-Mlops-Event": self.event},
        ).notify(context)


# --- gathering: the plain data mlops.notifications composes the message from --------------------------

def compose(event: str, model: str, context) -> messages.Message:
    """Subject and body lines of the mail for `event`, from a task callback's context."""
    return _GATHERERS[event](model, context)


def _task(context) -> messages.TaskRef:
    ti = context["ti"]
    return messages.TaskRef(dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id,
                            try_number=getattr(ti, "try_number", None), max_tries=getattr(ti, "max_tries", None),
                            logical_date=context.get("logical_date"),
                            data_interval_end=context.get("data_interval_end"), url=task_url(ti))


def _validation_failed(model: str, context) -> messages.Message:
    error = context.get("exception")
    return messages.validation_failed(model, _task(context), str(error) if error is not None else None)


def _promoted(model: str, context) -> messages.Message:
    task = context.get("task")
    summary = context["ti"].xcom_pull(task_ids=getattr(task, "evaluate_task_id", "evaluate")) or {}
    return messages.promoted(model, _task(context), _own_return(context), summary)


def _drift_alarm(model: str, context) -> messages.Message:
    return messages.drift_alarm(model, _task(context), _own_return(context))


def _rolled_back(model: str, context) -> messages.Message:
    result = _own_return(context)
    reason = actor = None
    if not result.get("reason") or not result.get("actor"):
        record = _audit_record(model, result.get("audit_id"))
        reason, actor = getattr(record, "reason", None), getattr(record, "actor", None)
    reason = reason or (context.get("params") or {}).get("reason")
    return messages.rolled_back(model, _task(context), result, reason=reason, actor=actor)


def _deployed(model: str, context) -> messages.Message:
    return messages.deployed(model, _task(context), _own_return(context))


def _deploy_rolled_back(model: str, context) -> messages.Message:
    return messages.deploy_rolled_back(model, _task(context), _own_return(context))


def _approval_requested(model: str, context) -> messages.Message:
    task = context.get("task")
    link = None
    try:
        link = task.generate_link_to_ui_from_context(context=context)
    except Exception:  # noqa: BLE001 - no [api] base_url: the mail names the task instead
        link = None
    return messages.approval_requested(model, _task(context), str(getattr(task, "subject", "") or ""),
                                       str(getattr(task, "body", "") or ""), link)


_GATHERERS = {"validation_failed": _validation_failed, "promoted": _promoted, "drift_alarm": _drift_alarm,
              "rolled_back": _rolled_back, "deployed": _deployed, "deploy_rolled_back": _deploy_rolled_back,
              "approval_requested": _approval_requested}


def task_url(ti) -> str | None:
    """The task instance's page in the Airflow UI, when `[api] base_url` says where that is."""
    from airflow.sdk.configuration import conf

    return messages.task_url(conf.get("api", "base_url", fallback=None), ti.dag_id, ti.run_id, ti.task_id,
                             getattr(ti, "map_index", None))


def _own_return(context) -> dict:
    ti = context["ti"]
    value = ti.xcom_pull(task_ids=ti.task_id)
    return value if isinstance(value, dict) else {}


def _audit_record(model: str, audit_id: str | None):
    if not audit_id:
        return None
    from mlops.audit import AuditLog
    from mlops.settings import get_settings

    return next((r for r in AuditLog(get_settings().audit_root, model).records() if r.id == audit_id), None)


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
