from __future__ import annotations

from datetime import timedelta

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from mlops.spec import ModelSpec
from mlops_airflow.hooks.mlflow import with_mlflow_connection
from mlops_airflow.lineage import LineageMixin
from mlops_airflow.links import VALIDATION_LINKS


class ValidateDataOperator(LineageMixin, BaseOperator):
    """Runs the model's GX suite on the run's training window. Blocking failures fail the task without
    retrying (the data will not fix itself), except a newest partition that has not landed yet: that is
    checked again `dataset.window.late_retries` times. The summary and the window go to XCom."""

    ui_color = "#e8f4ea"
    operator_extra_links = VALIDATION_LINKS

    def __init__(self, *, spec: ModelSpec, **kwargs):
        kwargs.setdefault("retries", spec.dataset.window.late_retries)
        kwargs.setdefault("retry_delay", timedelta(minutes=spec.dataset.window.late_retry_minutes))
        super().__init__(**kwargs)
        self.spec = spec

    @with_mlflow_connection
    def execute(self, context):
        from mlops.data import DataError
        from mlops.settings import get_settings
        from mlops.validation import ValidationFailed, check_training_window
        from mlops_airflow.hooks.mlflow import verify_access
        from mlops_airflow.runtime import data_interval_end

        verify_access(get_settings())  # wrong MLflow credentials fail here, before any data is read or trained on
        label = context["ti"].run_id.replace(":", "").replace("+", "")
        try:
            summary = check_training_window(self.spec, get_settings(), data_interval_end(context), label)
        except ValidationFailed as exc:  # the window and what failed, for the failed run's lineage event
            self.note_lineage(window=exc.window or None, validation=exc.report.result_path,
                              facts={"validation": {"success": False, "blocking_failures":
                                                    exc.report.summary()["blocking_failures"]}})
            self._failed(exc)
        except DataError as exc:
            raise AirflowFailException(str(exc)) from None
        self.note_lineage(window=summary, validation=summary.get("result_path"),
                          facts={"fingerprint": summary["fingerprint"],
                                 "validation": {"success": True, "evaluated": summary["evaluated"],
                                                "warnings": summary["warnings"]}})
        self.log.info("window %s..%s (%s): %d rows passed %d expectations; warnings: %s",
                      summary["window_first_day"], summary["window_last_day"], summary["window_anchor"],
                      summary["rows"], summary["evaluated"], summary["warnings"] or "none")
        return summary

    def _failed(self, exc):
        from mlops.validation import NewestPartitionMissing

        if isinstance(exc, NewestPartitionMissing):
            raise AirflowException(f"{exc}\nOnly the newest partition is missing: it may still be landing, so "
                                   f"this is checked again in {self.spec.dataset.window.late_retry_minutes} "
                                   "minutes (dataset.window.late_retries).") from None
        raise AirflowFailException(str(exc)) from None
