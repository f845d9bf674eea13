"""What a model's mails say, from plain data (mlops.notifications): no Airflow, no SMTP."""

from mlops import notifications as n

TASK = n.TaskRef(dag_id="churn__train", task_id="promote", run_id="scheduled__2026-01-15T00:00:00+00:00",
                 try_number=2, max_tries=3, logical_date="2026-01-15 00:00:00+00:00",
                 url="http://airflow.example.com/dags/churn__train/runs/x/tasks/promote")


def test_where_names_the_task_the_try_and_the_link():
    assert n.where(TASK) == ["Task: churn__train / promote", "Run: scheduled__2026-01-15T00:00:00+00:00 (try 2 of 4)",
                             "Logical date: 2026-01-15 00:00:00+00:00",
                             "In Airflow: http://airflow.example.com/dags/churn__train/runs/x/tasks/promote"]
    assert n.where(n.TaskRef("d", "t", "r")) == ["Task: d / t", "Run: r"]


def test_task_url_quotes_the_run_and_marks_a_mapped_task():
    assert n.task_url(None, "d", "r", "t") is None
    assert n.task_url("http://af:8080/", "churn__train", "manual__2026-01-20T10:00:00+00:00", "train", 3) == (
        "http://af:8080/dags/churn__train/runs/manual__2026-01-20T10%3A00%3A00%2B00%3A00/tasks/train/mapped/3")
    assert n.task_url("http://af", "d", "r", "t", -1) == "http://af/dags/d/runs/r/tasks/t"


def test_a_failed_gate_quotes_the_error_line_by_line():
    subject, lines = n.validation_failed("churn", TASK, "3 expectations failed:\n- tenure is null")
    assert subject == "[mlops] churn: data validation failed (churn__train)"
    assert lines[2:4] == ["3 expectations failed:", "- tenure is null"] and lines[-1].startswith("In Airflow: ")
    assert "(no exception text: see the task log)" in n.validation_failed("churn", TASK, None).lines


def test_a_promotion_says_versions_reasons_metrics_and_the_audit_record():
    result = {"champion": "3", "previous": "2", "audit_id": "a1"}
    summary = {"decision": {"forced": True, "reasons": ["auc 0.81 >= 0.80"]},
               "challenger_metrics": {"auc": 0.81, "f1": float("nan")}, "champion_metrics": {"auc": 0.8}}
    subject, lines = n.promoted("churn", TASK, result, summary)
    assert subject == "[mlops] churn: v3 promoted to champion (forced) (was v2)"
    assert "New champion: v3 (forced); previous champion: v2." in lines and "  - auc 0.81 >= 0.80" in lines
    assert "  auc: 0.8100 / 0.8000" in lines and "  f1: - / -" in lines
    assert "Audit record: a1 (python -m mlops.registry audit churn)" in lines
    first = n.promoted("churn", TASK, {"champion": "1"}, {})
    assert (first.subject == "[mlops] churn: v1 promoted to champion (was (none))"
            and "  - (not recorded)" in first.lines)


def test_a_drift_alarm_says_what_was_bad_and_why_it_fired():
    extra = {"day": "2026-01-16", "champion_version": "1", "reasons": ["tenure drifted"], "alarm": ["2 bad days"],
             "monitor_run_id": "r9"}
    subject, lines = n.drift_alarm("churn", TASK, extra)
    assert subject == "[mlops] churn: drift alarm on 2026-01-16, retraining requested"
    assert "  - tenure drifted" in lines and "  - 2 bad days" in lines
    assert "MLflow monitoring run: r9 (report: checks/2026-01-16/report.html)" in lines
    assert not any("will cost" in line for line in lines)  # no trained run yet: no estimate
    priced = n.drift_alarm("churn", TASK, {**extra, "estimated_cost": {"runs": 3, "cost": 1.234, "minutes": 12.4,
                                                                       "currency": "USD"}})
    assert ("The retraining will cost about 1.23 USD and take about 12 min (the mean of the last 3 training "
            "run(s)).") in priced.lines


def test_a_rollback_prefers_the_tasks_own_reason_and_actor_then_the_given_ones():
    own = n.rolled_back("churn", TASK, {"champion": "1", "previous": "2", "reason": "bad", "actor": "ann"},
                        reason="other", actor="bob")
    assert own.subject == "[mlops] churn: champion rolled back v2 -> v1"
    assert "Reason: bad" in own.lines and "By: ann" in own.lines
    given = n.rolled_back("churn", TASK, {"to_version": "1", "from_version": "2"}, reason="from audit", actor="bob")
    assert "Champion now: v1; rolled back from: v2." in given.lines and "Reason: from audit" in given.lines
    bare = n.rolled_back("churn", TASK, {})
    assert "Reason: (no reason recorded)" in bare.lines and not any(line.startswith("By:") for line in bare.lines)


def test_the_fallback_and_the_html_escape_the_text_and_link_the_task():
    assert n.fallback("churn", "drift_alarm", TASK).subject == "[mlops] churn: drift alarm"
    page = n.as_html(["a <b> & c", 'In Airflow: http://af/x?a=1&b="2"'])
    assert "a &lt;b&gt; &amp; c" in page
    assert '<a href="http://af/x?a=1&amp;b=&quot;2&quot;">' in page and page.startswith("<pre")
