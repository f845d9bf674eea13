from __future__ import annotations

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from mlops.spec import ModelSpec


class ValidateDataOperator(BaseOperator):
    """Runs the model's GX suite on the run's training window. Blocking failures fail the task without
    retrying (the data will not fix itself); the summary and the window go to XCom."""

    ui_color = "#e8f4ea"

    def __init__(self, *, spec: ModelSpec, **kwargs):
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        self.spec = spec

    def execute(self, context):
        from mlops.data import DataError
        from mlops.settings import get_settings
        from mlops.validation import ValidationFailed, check_training_window

        label = context["ti"].run_id.replace(":", "").replace("+", "")
        try:
            summary = check_training_window(self.spec, get_settings(), context.get("data_interval_end"), label)
        except (ValidationFailed, DataError) as exc:
            raise AirflowFailException(str(exc)) from None
        self.log.info("window %s..%s (%s): %d rows passed %d expectations; warnings: %s",
                      summary["window_first_day"], summary["window_last_day"], summary["window_anchor"],
                      summary["rows"], summary["evaluated"], summary["warnings"] or "none")
        return summary
