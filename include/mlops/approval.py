"""Human approval of a promotion or a deployment: the request a reviewer reads, the verdict their answer
(or a silence) becomes, and the record of it.

The Airflow layer asks through Airflow's human-in-the-loop operators (mlops_airflow.operators.approval);
everything here is plain data, so the wording and the rules are tested without Airflow. Records live beside
the alias audit log, under `<audit_root>/<model>/approvals/`, one small JSON object each, never rewritten.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from mlops.audit import JsonRecordLog
from mlops.spec.approval import Approval

APPROVE, REJECT = "Approve", "Reject"  # the options of Airflow's ApprovalOperator
GATES = ("promotion", "deployment")


@dataclass(frozen=True)
class ApprovalRecord:
    model: str
    gate: str  # promotion | deployment
    version: str  # the version that asked to go through
    verdict: str  # approved | rejected | timed_out_rejected | timed_out_approved
    by: str | None  # the Airflow user who answered; None when the time ran out
    comment: str
    requested_at: str
    responded_at: str
    run: str  # "airflow:<dag_id>/<run_id>"
    evidence: dict[str, Any] = field(default_factory=dict)  # what the reviewer saw, in short
    time: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="microseconds"))
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def approved(self) -> bool:
        return self.verdict in ("approved", "timed_out_approved")

    def says(self) -> str:
        """One line for logs, audit reasons and the fleet page."""
        who = f"by {self.by}" if self.by else "nobody answered in time"
        verdict = {"approved": "approved", "rejected": "rejected", "timed_out_rejected": "rejected on timeout",
                   "timed_out_approved": "approved on timeout"}.get(self.verdict, self.verdict)
        comment = f": {self.comment!r}" if self.comment else ""
        return f"{self.gate} of v{self.version} {verdict} ({who}, {self.responded_at}){comment}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ApprovalLog(JsonRecordLog[ApprovalRecord]):
    """Under `<audit_root>/<model>/approvals/`, beside the alias audit log."""

    record_type = ApprovalRecord
    folder = "approvals"

    def for_run(self, gate: str, run: str, version: str) -> ApprovalRecord | None:
        """The verdict already recorded for this run's request (a retried task must not record it twice)."""
        found = [r for r in self.records() if r.gate == gate and r.run == run and r.version == version]
        return found[-1] if found else None


def verdict(response: dict[str, Any], approval: Approval) -> tuple[str, str | None]:
    """(verdict, user) from the answer Airflow resumed the task with. A timeout is Airflow applying the
    request's default (the spec's `on_timeout`) with no user."""
    chosen = (response.get("chosen_options") or [None])[0]
    user = response.get("responded_by_user") or None
    by = str(user.get("name") or user.get("id")) if isinstance(user, dict) else (str(user) if user else None)
    if response.get("timedout") or by is None:
        return ("timed_out_approved" if chosen == APPROVE else "timed_out_rejected"), None
    return ("approved" if chosen == APPROVE else "rejected"), by


def timeout_default(approval: Approval) -> str:
    return APPROVE if approval.on_timeout == "approve" else REJECT


# --- what the reviewer reads ------------------------------------------------------------------------------

def _v(version: object) -> str:
    return f"v{version}" if version not in (None, "") else "(none)"


def _num(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and value == value else "-"


def _metrics_table(new: dict[str, Any], old: dict[str, Any], new_label: str, old_label: str) -> list[str]:
    names = sorted(set(new) | set(old))
    if not names:
        return []
    rows = [f"| metric | {new_label} | {old_label} |", "|---|---:|---:|"]
    rows += [f"| {n} | {_num(new.get(n))} | {_num(old.get(n))} |" for n in names]
    return rows


def _links(links: dict[str, str]) -> list[str]:
    shown = [f"[{label}]({url})" for label, url in links.items() if url]
    return ["**Links:** " + " · ".join(shown)] if shown else []


def promotion_request(model: str, summary: dict[str, Any], approval: Approval,
                      links: dict[str, str]) -> tuple[str, str]:
    """Subject and Markdown body of a promotion's approval request, from the evaluate step's summary."""
    decision = summary.get("decision") or {}
    new, old = summary.get("challenger_version"), summary.get("champion_version")
    forced = " (forced)" if decision.get("forced") else ""
    subject = f"{model}: promote {_v(new)} to champion{forced}? (champion now {_v(old)})"
    body = [f"### {model}: {_v(new)} asks to replace champion {_v(old)}",
            f"The promotion policy says **{decision.get('outcome', '?')}**{forced}. Approve to move the champion "
            f"alias; reject (or let {approval.timeout_minutes:g} min pass: {approval.on_timeout}) to keep "
            f"{_v(old)}. May answer: {approval.who()}.", "", "**Reasons**",
            *[f"- {r}" for r in decision.get("reasons") or ["(none recorded)"]]]
    if decision.get("warnings"):
        body += ["", "**Warnings**", *[f"- {w}" for w in decision["warnings"]]]
    table = _metrics_table(summary.get("challenger_metrics") or {}, summary.get("champion_metrics") or {},
                           f"challenger {_v(new)}", f"champion {_v(old)}")
    if table:
        body += ["", f"**Holdout metrics** ({summary.get('holdout_rows', '?')} rows, fingerprint "
                     f"`{str(summary.get('holdout_fingerprint', ''))[:12]}`)", "", *table]
    comparison = summary.get("comparison") or {}
    if comparison:
        body += ["", "**Paired bootstrap:** " + ", ".join(f"{k} {_num(v) if isinstance(v, float) else v}"
                                                         for k, v in comparison.items()
                                                         if not isinstance(v, (list, dict)))]
    explanation = summary.get("explanation")
    if explanation:
        from mlops.explain import markdown

        body += ["", f"**What the models lean on** (permutation importance on {explanation.get('rows')} holdout "
                     f"rows, share of the {explanation.get('metric')} drop when a feature is shuffled)", "",
                 *markdown(explanation)]
    body += ["", *_links(links)]
    return subject, "\n".join(body).strip()


def deployment_request(model: str, plan: dict[str, Any], smoke: dict[str, Any], bake: dict[str, Any],
                       approval: Approval, links: dict[str, str]) -> tuple[str, str]:
    """Subject and Markdown body of a deployment's approval request, after its smoke test and bake."""
    new, old = plan.get("version"), plan.get("from_version")
    subject = f"{model}: let {_v(new)} take all online traffic? (serving now {_v(old)})"
    body = [f"### {model}: {_v(new)} passed its gates and waits beside {_v(old)}",
            f"Approve to switch the endpoint to {_v(new)}; reject (or let {approval.timeout_minutes:g} min pass: "
            f"{approval.on_timeout}) to stop it, {_v(old)} serving on. May answer: {approval.who()}."]
    if plan.get("reason"):
        body += ["", f"Requested by {plan.get('actor', '?')}: {plan['reason']}"]
    if smoke:
        body += ["", f"**Smoke test:** {smoke.get('rows')} holdout rows, largest |online - offline| "
                     f"{_num(smoke.get('max_abs_diff'))} (tolerance {smoke.get('tolerance')})"]
    if bake:
        rows = ["| figure | value | limit |", "|---|---:|---:|"]
        limits = bake.get("limits") or {}
        for key, label in (("requests", "requests"), ("error_rate", "error rate"), ("p50_ms", "p50 ms"),
                           ("p99_ms", "p99 ms"), ("psi", "PSI vs stable"), ("disagreement", "class disagreement")):
            if bake.get(key) is not None:
                rows.append(f"| {label} | {_num(bake[key]) if isinstance(bake[key], float) else bake[key]} | "
                            f"{limits.get(key, '')} |")
        body += ["", "**Canary bake**", "", *rows]
    body += ["", *_links(links)]
    return subject, "\n".join(body).strip()
