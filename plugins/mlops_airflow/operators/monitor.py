from __future__ import annotations

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops.spec import ModelSpec
from mlops_airflow.hooks.mlflow import with_mlflow_connection
from mlops_airflow.lineage import LineageMixin


class MonitorOperator(LineageMixin, BaseOperator):
    """Drift against the champion's reference profile, quality on the labels that arrived, and the alarm
    decision; everything is logged to the champion's monitoring run in MLflow. Returns the check."""

    ui_color = "#fff4e0"

    def __init__(self, *, spec: ModelSpec, **kwargs):
        super().__init__(**kwargs)
        self.spec = spec

    @with_mlflow_connection
    def execute(self, context):
        from mlops.data import DataError
        from mlops.monitoring import run_check
        from mlops.scoring import NoChampion
        from mlops.settings import get_settings
        from mlops_airflow.runtime import data_interval_end

        try:
            check = run_check(self.spec, get_settings(), data_interval_end(context), context["ti"].run_id)
        except NoChampion as exc:
            raise AirflowSkipException(str(exc)) from None
        except DataError as exc:
            raise AirflowFailException(str(exc)) from None
        self.log.info("%s %s: %s; drifted: %s; quality: %s; alarm: %s (%s)", self.spec.name, check["day"],
                      "bad" if check["bad"] else "fine", check["drifted_columns"] or "none",
                      check["quality"].get("status"), check["alarm"], "; ".join(check["alarm_reasons"]))
        self._note(check)
        return {k: v for k, v in check.items() if k != "columns"}  # XCom stays small

    def _note(self, check: dict) -> None:
        """Read: the day's partition, the predictions of the labelled day (quality), the champion version."""
        from datetime import date

        from mlops.data import partition_uri
        from mlops.scoring import predictions_uri
        from mlops.settings import get_settings

        settings = get_settings()
        reads = [partition_uri(self.spec, settings.data_root, date.fromisoformat(check["day"]))]
        quality = check.get("quality") or {}
        if quality.get("status") == "measured":
            reads.append(predictions_uri(self.spec, settings, date.fromisoformat(quality["labelled_day"])))
        self.note_lineage(reads=reads, model_version=check.get("champion_version"),
                          facts={"day": check["day"], "bad": check.get("bad"), "alarm": check.get("alarm"),
                                 "drifted_columns": check.get("drifted_columns"),
                                 "monitor_run_id": check.get("monitor_run_id")})


class RequestRetrainingOperator(LineageMixin, BaseOperator):
    """Emits the retraining Asset event, with the alarm's reasons in its extra, when the check fired the
    alarm; skipped otherwise (a skipped task emits no event, so stable data records none)."""

    ui_color = "#ffe0e0"

    def __init__(self, *, spec: ModelSpec, check_task_id: str = "check", **kwargs):
        super().__init__(**kwargs)
        self.spec, self.check_task_id = spec, check_task_id

    @with_mlflow_connection
    def execute(self, context):
        from mlops_airflow.assets import retrain_asset

        check = context["ti"].xcom_pull(task_ids=self.check_task_id) or {}
        if not check.get("alarm"):
            raise AirflowSkipException(f"no alarm for {check.get('day')}: {'; '.join(check.get('alarm_reasons', []))}")
        extra = {"model": self.spec.name, "day": check["day"], "reasons": check["reasons"],
                 "alarm": check["alarm_reasons"], "champion_version": check["champion_version"],
                 "monitor_run_id": check["monitor_run_id"], "requested_by": context["ti"].run_id,
                 "estimated_cost": self._estimate()}
        context["outlet_events"][retrain_asset(self.spec)].extra = extra
        self.log.warning("retraining requested for %s: %s", self.spec.name, "; ".join(check["reasons"]))
        self.note_lineage(requests=[retrain_asset(self.spec).uri], model_version=check["champion_version"],
                          facts={"day": check["day"], "reasons": check["reasons"],
                                 "estimated_cost": extra["estimated_cost"]})
        return extra

    def _estimate(self) -> dict | None:
        """What the retraining will roughly cost, from the model's recent runs (None before any trained)."""
        from mlops.cost import retraining_estimate
        from mlops.settings import get_settings

        try:
            return retraining_estimate(get_settings(), self.spec.name)
        except Exception:  # noqa: BLE001 - an estimate must not hold the request back
            self.log.warning("%s: no cost estimate for the retraining", self.spec.name, exc_info=True)
            return None
