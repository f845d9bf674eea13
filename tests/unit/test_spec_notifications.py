"""The spec's `notifications` section: who is mailed about which events, through which SMTP connection."""

import pytest
import yaml

from helpers import ROOT
from mlops.spec import NOTIFICATION_EVENTS, SpecError, json_schema, load_spec, parse_spec, spec_paths

MODELS = ROOT / "include" / "models"


def spec_with(notifications=None, name="churn"):
    data = yaml.safe_load((MODELS / f"{name}.yaml").read_text())
    data.pop("notifications", None)
    if notifications is not None:
        data["notifications"] = notifications
    return data


def test_without_a_section_nothing_is_sent():
    n = parse_spec(spec_with()).notifications
    assert n.email == [] and n.smtp_conn_id == "smtp_default"
    assert not any(n.wants(event) for event in NOTIFICATION_EVENTS)


def test_every_event_by_default_once_someone_is_listed():
    n = parse_spec(spec_with({"email": ["oncall@example.com"]})).notifications
    assert n.events == ["validation_failed", "promoted", "drift_alarm", "rolled_back", "deployed",
                        "deploy_rolled_back", "approval_requested"]
    assert all(n.wants(event) for event in NOTIFICATION_EVENTS)


def test_a_single_address_and_a_subset_of_events():
    n = parse_spec(spec_with({"email": "oncall@example.com", "events": ["promoted"],
                              "smtp_conn_id": "smtp_team"})).notifications
    assert n.email == ["oncall@example.com"] and n.smtp_conn_id == "smtp_team"
    assert n.wants("promoted") and not n.wants("drift_alarm") and not n.wants("validation_failed")
    assert not parse_spec(spec_with({"email": ["a@example.com"], "events": []})).notifications.wants("promoted")


def test_unknown_event_names_are_refused_in_code_too():
    with pytest.raises(ValueError, match="unknown notification event 'promotion'"):
        parse_spec(spec_with({"email": ["a@example.com"]})).notifications.wants("promotion")


def test_every_problem_is_reported_with_field_and_fix():
    with pytest.raises(SpecError) as err:
        parse_spec(spec_with({"email": ["oncall", "ok@example.com", "a@example.com, b@example.com"],
                              "events": ["promoted", "promoted", "drifted"], "smtp": "x"}), "churn.yaml")
    problems = "\n".join(err.value.problems)
    assert len(err.value.problems) == 3, problems
    assert ("notifications.email: Value error, not an email address: "
            "'oncall', 'a@example.com, b@example.com'") in problems
    assert "one address per list item" in problems
    assert ("notifications.events.2: Input should be 'validation_failed', 'promoted', 'drift_alarm', 'rolled_back', "
            "'deployed', 'deploy_rolled_back' or 'approval_requested'") in problems
    assert "notifications.smtp: Extra inputs are not permitted -> fix: remove it or fix its spelling" in problems
    with pytest.raises(SpecError, match="notifications.events: Value error, listed more than once: promoted"):
        parse_spec(spec_with({"email": ["a@example.com"], "events": ["promoted", "promoted"]}))


def test_notifications_do_not_change_what_is_trained():
    quiet = parse_spec(spec_with())
    loud = parse_spec(spec_with({"email": ["oncall@example.com"]}))
    assert quiet.content_hash() == loud.content_hash()


@pytest.mark.parametrize("path", spec_paths(MODELS), ids=lambda p: p.stem)
def test_example_specs_mail_their_team_on_every_event(path):
    spec = load_spec(path)
    n = spec.notifications
    assert n.email and all(address.endswith("@example.com") for address in n.email)
    # the deploy events happen only to a model that is served online, approval requests only behind a gate
    gated = spec.promotion.approval is not None or (spec.serving is not None and spec.serving.approval is not None)
    applies = [e for e in NOTIFICATION_EVENTS if (spec.serving is not None or not e.startswith("deploy"))
               and (gated or e != "approval_requested")]
    assert n.events == applies and n.smtp_conn_id == "smtp_default"


def test_schema_documents_the_section():
    schema = json_schema()
    section = schema["$defs"]["Notifications"]
    assert section["additionalProperties"] is False
    assert set(section["properties"]) == {"email", "events", "smtp_conn_id"}
    assert all(prop.get("description") for prop in section["properties"].values())
