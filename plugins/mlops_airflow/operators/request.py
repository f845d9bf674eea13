from __future__ import annotations

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from mlops.compute import Catalogue
from mlops.spec import ModelSpec


class CheckRequestOperator(BaseOperator):
    """The training run's first task: checks that the spec's trainer references import, that the trigger's
    conf names only the form's fields and carries a number wherever one is needed, and the form's rules
    across fields (force needs a reason, a pool the model may use). Fails at once, without a retry and
    listing every problem, before any data is read or any model trained. Returns the effective request."""

    ui_color = "#f0f0f0"

    def __init__(self, *, spec: ModelSpec, catalogue: Catalogue | None, **kwargs):
        kwargs.setdefault("retries", 0)  # a bad request does not get better by waiting
        super().__init__(**kwargs)
        self.spec, self.catalogue = spec, catalogue

    def execute(self, context):
        from mlops.compute import catalogue_path, load_catalogue
        from mlops.run_request import RunRequestError, training_request
        from mlops.settings import get_settings
        from mlops_airflow.runtime import trigger_conf

        catalogue = self.catalogue or load_catalogue(catalogue_path(get_settings().compute_dir))
        try:
            request = training_request(self.spec, catalogue, dict(context["params"]), conf=trigger_conf(context))
        except RunRequestError as exc:
            raise AirflowFailException(str(exc)) from None
        if request["force_promote"]:
            self.log.warning("force promote requested: %s", request["force_reason"])
        if request["pool_overridden"]:
            self.log.info("training on pool %s instead of %s for this run", request["compute_pool"],
                          self.spec.compute.pool)
        return request
