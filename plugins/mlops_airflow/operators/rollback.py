from __future__ import annotations

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops.spec import ModelSpec
from mlops_airflow.hooks.mlflow import with_mlflow_connection
from mlops_airflow.operators.promote import promotion_pool_args


class RollbackOperator(BaseOperator):
    """Points the champion alias back at a version (default: the previous champion) in the model's
    promotion pool and under its promotion lock, so it never interleaves with a promotion on any worker,
    and appends an audit record naming the user who triggered it and their reason. Succeeds (updating the
    champion asset) only when the alias moved; skipped when the target already is the champion."""

    ui_color = "#fde8e8"

    def __init__(self, *, spec: ModelSpec, **kwargs):
        kwargs.setdefault("retries", 0)
        super().__init__(**promotion_pool_args(spec, kwargs))
        self.spec = spec

    @with_mlflow_connection
    def execute(self, context):
        from mlops.locks import LockTimeout
        from mlops.promotion import rollback
        from mlops.settings import get_settings
        from mlops_airflow.runtime import actor

        params = context["params"]
        target = str(params.get("to_version") or "").strip().lstrip("v") or None
        reason = str(params.get("reason") or "").strip()
        if not reason:
            raise AirflowFailException(f"{self.spec.name}: a rollback needs a reason (the `reason` field); it goes "
                                       "to the audit log")
        who = actor(context)
        triggered_by = getattr(context.get("dag_run"), "triggering_user_name", None)
        if triggered_by:
            who = f"{triggered_by} via {who}"
        try:
            result = rollback(get_settings(), self.spec, actor=who, reason=reason, to_version=target)
        except (ValueError, LockTimeout) as exc:
            raise AirflowFailException(str(exc)) from None
        if result.outcome != "rolled_back":
            raise AirflowSkipException(result.message)
        self.log.warning("%s", result.message)
        return {**result.to_dict(), "reason": reason, "actor": who}
