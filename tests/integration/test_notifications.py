"""Mail on a model's events, end to end: real DAG runs (`dag.test()`) send through the SMTP provider to a
real SMTP server on the loopback (aiosmtpd), configured as an Airflow connection in the environment.

The models come from a folder of their own: `churn` mails its on-call (and alarms on the first drifted
day, to keep the monitor scenario short), `demand` has no notifications section."""

from __future__ import annotations

import email
import html
import json
import logging
import re
import socket
from datetime import date, datetime, timezone
from types import SimpleNamespace

import pytest
import yaml

from helpers import MODELS
from k8s_e2e import task_instances
from mlops import synthetic

ONCALL = "churn-oncall@example.com"
BASE_URL = "http://airflow.example.com:8080"


class Inbox:
    """aiosmtpd handler: keeps every message it accepts."""

    def __init__(self):
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted for delivery"


def body(message) -> str:
    """The HTML part as text: tags dropped, entities unescaped."""
    for part in message.walk():
        if part.get_content_type() == "text/html":
            return html.unescape(re.sub(r"<[^>]+>", "", part.get_payload(decode=True).decode()))
    raise AssertionError("no text/html part")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def inbox(monkeypatch):
    from aiosmtpd.controller import Controller

    mailbox = Inbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    # The provider's connection: plain SMTP (its defaults are SMTPS and STARTTLS), sender in the extra.
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": controller.port,
        "extra": {"from_email": "airflow@example.com", "disable_ssl": True, "disable_tls": True,
                  "timeout": 10, "retry_limit": 0}}))
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
    yield mailbox
    controller.stop()


@pytest.fixture
def models(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    churn = yaml.safe_load((MODELS / "churn.yaml").read_text())
    churn["notifications"] = {"email": [ONCALL]}  # every event by default, through smtp_default
    churn["monitoring"].update({"persistence": 1, "window": 1, "cooldown_days": 0})
    demand = yaml.safe_load((MODELS / "demand.yaml").read_text())
    demand.pop("notifications", None)
    for spec in (churn, demand):
        (folder / f"{spec['name']}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    monkeypatch.setenv("MLOPS_MODELS_DIR", str(folder))
    return folder


def dag(dag_id):
    """A DAG from a fresh DagBag: dag.test() keeps a run's conf in the DAG's params."""
    from airflow.dag_processing.dagbag import DagBag

    from helpers import ROOT

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


def run(dag_id, day: date):
    dr = dag(dag_id).test(logical_date=datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc))
    return {task: state for task, (state, *_) in task_instances(dag_id, dr.run_id).items()}, dr.run_id


def test_failed_validation_gates_are_mailed_once_and_quiet_models_send_nothing(
        inbox, models, platform, airflow_db, tmp_path, monkeypatch):
    root = tmp_path / "data"
    for dataset in ("churn", "demand"):
        synthetic.generate(dataset, date(2025, 12, 10), date(2026, 1, 14), root, bad="nulls",
                           bad_date=date(2026, 1, 14))
    monkeypatch.setenv("MLOPS_DATA_ROOT", str(root))

    states, run_id = run("churn__train", date(2026, 1, 15))
    assert states["validate_data"] == "failed" and states["promote"] == "upstream_failed", states
    (mail,) = inbox.messages
    assert mail["Subject"] == "[mlops] churn: data validation failed (churn__train)"
    assert mail["To"] == ONCALL and mail["X-Envelope-To"] == ONCALL and mail["From"] == "airflow@example.com"
    assert (mail["X-Mlops-Model"], mail["X-Mlops-Event"]) == ("churn", "validation_failed")
    text = body(mail)
    assert "the validation gate validate_data of churn__train failed" in text
    assert "data validation failed: 1 blocking expectation(s)" in text  # the task's own message, in full
    assert "'monthly_charges' has no nulls" in text and "null; other days 0" in text  # the bad day, by name
    assert f"Run: {run_id}" in text
    assert f"{BASE_URL}/dags/churn__train/runs/{run_id.replace(':', '%3A').replace('+', '%2B')}/tasks/validate_data" \
        in text

    # The monitor's gate on the same bad day.
    states, _ = run("churn__monitor", date(2026, 1, 15))
    assert states["validate_batch"] == "failed" and states["check"] == "upstream_failed", states
    assert len(inbox.messages) == 2
    mail = inbox.messages[1]
    assert mail["Subject"] == "[mlops] churn: data validation failed (churn__monitor)"
    assert "validate_batch of churn__monitor failed" in body(mail) and "'monthly_charges' has no nulls" in body(mail)

    # demand has no notifications section: its tasks carry no notifier, a failed gate sends nothing.
    assert not any(t.on_failure_callback or t.on_success_callback for t in dag("demand__train").tasks)
    states, _ = run("demand__train", date(2026, 1, 15))
    assert states["validate_data"] == "failed", states
    assert len(inbox.messages) == 2


def test_promotion_and_drift_alarm_are_mailed(inbox, models, platform, airflow_db, tmp_path, monkeypatch):
    root = tmp_path / "data"
    synthetic.generate("churn", date(2025, 12, 20), date(2026, 1, 16), root, drift_from=date(2026, 1, 16))
    monkeypatch.setenv("MLOPS_DATA_ROOT", str(root))

    states, run_id = run("churn__train", date(2026, 1, 15))
    assert states["promote"] == "success", states
    (mail,) = inbox.messages
    assert mail["Subject"] == "[mlops] churn: v1 promoted to champion (was (none))"
    text = body(mail)
    assert "churn: champion moved (none) -> v1" in text
    assert "no champion yet and the challenger passes every guardrail" in text  # the decision's reasons
    assert re.search(r"roc_auc: 0\.\d{4} / -", text), text
    assert "Audit record: " in text and "/dags/churn__train/runs/" in text and text.rstrip().endswith("/tasks/promote")

    # The first drifted day fires the alarm (persistence 1 of 1, no cooldown): request_retraining succeeds.
    states, _ = run("churn__monitor", date(2026, 1, 17))
    assert states["request_retraining"] == "success", states
    assert len(inbox.messages) == 2
    mail = inbox.messages[1]
    assert mail["Subject"] == "[mlops] churn: drift alarm on 2026-01-16, retraining requested"
    text = body(mail)
    assert "critical column(s) drifted" in text and "champion v1" in text
    assert "Why the alarm fired:" in text and "MLflow monitoring run: " in text


def fake_context(result, params=None):
    ti = SimpleNamespace(dag_id="churn__rollback", task_id="rollback", run_id="manual__2026-01-20T10:00:00+00:00",
                         try_number=1, max_tries=0, map_index=-1, xcom_pull=lambda task_ids: result)
    return {"ti": ti, "params": params or {}}


def test_rollback_mail_for_the_rollback_dag(inbox):
    from mlops_airflow.notifications.notifier import ModelEventNotifier

    result = {"outcome": "rolled_back", "champion": "1", "previous": "2", "audit_id": "abc123",
              "message": "churn: champion rolled back v2 -> v1", "reason": "v2 mis-scores new stores",
              "actor": "oncall@example.com"}
    ModelEventNotifier(model="churn", event="rolled_back", to=[ONCALL])(fake_context(result))
    (mail,) = inbox.messages
    assert mail["Subject"] == "[mlops] churn: champion rolled back v2 -> v1"
    text = body(mail)
    assert "Champion now: v1; rolled back from: v2." in text and "Reason: v2 mis-scores new stores" in text
    assert "By: oncall@example.com" in text
    assert f"{BASE_URL}/dags/churn__rollback/runs/manual__2026-01-20T10%3A00%3A00%2B00%3A00/tasks/rollback" in text


def test_a_notification_that_cannot_be_sent_is_logged_not_raised(inbox, monkeypatch, caplog):
    from mlops_airflow.notifications.notifier import ModelEventNotifier

    context = fake_context({"champion": "1", "previous": "2"})
    caplog.set_level(logging.WARNING, logger="mlops_airflow.notifications.notifier")
    ModelEventNotifier(model="churn", event="rolled_back", to=[ONCALL], smtp_conn_id="smtp_nowhere")(context)
    assert "there is no Airflow connection 'smtp_nowhere'; define it (e.g. AIRFLOW_CONN_SMTP_NOWHERE" in caplog.text

    monkeypatch.setenv("AIRFLOW_CONN_SMTP_CLOSED", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": free_port(),
        "extra": {"from_email": "airflow@example.com", "disable_ssl": True, "disable_tls": True, "retry_limit": 0}}))
    ModelEventNotifier(model="churn", event="rolled_back", to=[ONCALL], smtp_conn_id="smtp_closed")(context)
    assert "the rolled_back notification to churn-oncall@example.com was not sent" in caplog.text
    assert inbox.messages == []


def test_callbacks_follow_the_spec():
    from helpers import load_example
    from mlops_airflow.notifications import notifier as notify

    spec = load_example("churn")
    (notifier,) = notify.callbacks(spec, "promoted")
    assert (notifier.model, notifier.event, notifier.to, notifier.smtp_conn_id) == (
        "churn", "promoted", ["retention-oncall@example.com"], "smtp_default")
    quiet = spec.model_copy(update={"notifications": spec.notifications.model_copy(update={"events": ["promoted"]})})
    assert notify.callbacks(quiet, "drift_alarm") == [] and len(notify.callbacks(quiet, "promoted")) == 1
    with pytest.raises(ValueError, match="unknown notification event"):
        notify.callbacks(spec, "retrained")
