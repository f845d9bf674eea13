from __future__ import annotations

from datetime import timedelta

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops.locks import promotion_pool
from mlops.spec import ModelSpec
from mlops_airflow.hooks.mlflow import with_mlflow_connection
from mlops_airflow.lineage import LineageMixin
from mlops_airflow.links import VERSION_LINKS

PROMOTION_TIMEOUT = timedelta(minutes=15)


def promotion_pool_args(spec: ModelSpec, kwargs: dict) -> dict:
    """The model's one-slot Airflow pool, which keeps its promote and rollback tasks apart on any number of
    workers (the file lock only does on one host; see mlops.locks), and a task doc that says what to do
    when the pool is missing: the scheduler then never queues the task and says so only in its own log."""
    pool = promotion_pool(spec.name)
    doc = (f"Runs in the Airflow pool `{pool}` (one slot): promotions and rollbacks of {spec.name} take turns, "
           "whichever workers run them, so waiting in `scheduled` while another one runs is expected. Waiting "
           "while none runs means the pool does not exist (the spec is newer than the last pool sync; the "
           "scheduler's log says 'Tasks using non-existent pool'): run `python -m mlops_airflow.pools sync`, "
           "or the `sync_pools` task of `mlops__maintenance`.")
    # A promotion moves two aliases and writes one record: minutes at most. One that hangs must not keep the
    # model's pool, and so every later promotion and rollback, waiting forever.
    return {"doc_md": doc, "execution_timeout": PROMOTION_TIMEOUT, **kwargs, "pool": pool, "pool_slots": 1}


APPROVE_PROMOTION = "approve_promotion"  # the gate task before promote, for specs with promotion.approval


class PromoteModelOperator(LineageMixin, BaseOperator):
    """Applies the decision: moves the champion alias under the model's lock and audits it.
    Retries and re-runs are safe: an applied promotion is not applied or recorded twice.

    Succeeds (and updates the champion asset, waking scoring and monitoring) only when the alias moved;
    is skipped when nothing changed, including when another run promoted while this one decided (its
    decision is stale: concurrent backfill runs do this). Takes the model's promotion pool (one slot)."""

    ui_color = "#f3e8f8"
    operator_extra_links = VERSION_LINKS

    def __init__(self, *, spec: ModelSpec, evaluate_task_id: str = "evaluate", **kwargs):
        super().__init__(**promotion_pool_args(spec, kwargs))
        self.spec = spec
        self.evaluate_task_id = evaluate_task_id

    @with_mlflow_connection
    def execute(self, context):
        from mlops.policy import Decision
        from mlops.promotion import promote
        from mlops.settings import get_settings
        from mlops_airflow.runtime import actor

        summary = context["ti"].xcom_pull(task_ids=self.evaluate_task_id)
        decision = Decision(**summary["decision"])
        evidence = {"holdout_fingerprint": summary["holdout_fingerprint"],
                    "evaluation_run_id": summary["evaluation_run_id"],
                    "challenger_metrics": summary["challenger_metrics"],
                    "champion_metrics": summary["champion_metrics"]}
        approval = self._approval(context)
        if approval is not None:
            evidence["approval"] = approval
            decision.reasons.append(_says(approval))
        result = promote(
            get_settings(), self.spec, summary["challenger_version"], decision,
            expected_champion=summary["champion_version"], actor=actor(context), evidence=evidence,
        )
        self.note_lineage(model_version=summary["challenger_version"],
                          facts={"outcome": result.outcome, "champion": result.champion, "previous": result.previous,
                                 "audit_id": result.audit_id, "approval": approval})
        if result.outcome == "stale":
            # Not a failure of this run: its challenger is unchanged and the next run compares it again.
            self.log.warning("%s", result.message)
        if result.outcome != "promoted":
            raise AirflowSkipException(result.message)
        self.log.info("%s", result.message)
        return result.to_dict()

    def _approval(self, context) -> dict | None:
        """The approval record of this run's request, when the spec asks for one; a promotion that needs one
        and finds none (the gate task cleared away) does not move the champion."""
        if self.spec.promotion.approval is None:
            return None
        record = context["ti"].xcom_pull(task_ids=APPROVE_PROMOTION)
        if not isinstance(record, dict) or record.get("verdict") not in ("approved", "timed_out_approved"):
            raise AirflowFailException(f"{self.spec.name}: promotion.approval asks for an approval and this run "
                                       f"has none ({APPROVE_PROMOTION} returned {record!r}); clear "
                                       f"{APPROVE_PROMOTION} to ask again")
        return record


def _says(record: dict) -> str:
    from mlops.approval import ApprovalRecord

    return ApprovalRecord(**record).says()
