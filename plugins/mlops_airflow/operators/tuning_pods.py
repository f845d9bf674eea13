"""Trials in pods: the training pod operators with a trial's arguments. Deferrable like training: the pod's
result comes back in `trigger_reentry`, where it is told to the study; a final failure or a kill fails the
trial there. Imported only for specs that train on a cluster (the kubernetes client is not free to import)."""

from __future__ import annotations

import json
from typing import Any

from airflow.sdk.exceptions import AirflowException

from mlops.compute import Catalogue
from mlops.spec import ModelSpec
from mlops_airflow.operators.train_gke import GKETrainOperator
from mlops_airflow.operators.train_kubernetes import KubernetesTrainOperator
from mlops_airflow.operators.tuning import TrialMixin


class _PodTrialMixin(TrialMixin):
    trial: dict[str, Any]

    def extra_arguments(self) -> list[str]:
        return ["--trial-json", json.dumps(self.trial)]

    def execute(self, context):
        self._label(context)
        self._skip_if_finished()
        self.prepare_pod(context)
        return super().execute(context)

    def trigger_reentry(self, context, event):
        self._label(context)
        return super().trigger_reentry(context, event)

    def _priced(self, context, result):
        """A trial's result is told to the study, not priced on a model version (a trial registers none)."""
        if not isinstance(result, dict) or "number" not in result:
            return result
        self._tell(result)
        self.log.info("trial %s %s: %s", result["number"], result["state"], result["value"])
        return self._slim(result)

    def cleanup(self, pod, remote_pod, xcom_result=None, context=None) -> None:
        try:
            super().cleanup(pod, remote_pod, xcom_result=xcom_result, context=context)  # type: ignore[misc]
        except AirflowException as exc:
            if context is None or self._final_failure(exc, context):
                self._fail(f"{type(exc).__name__}: {str(exc)[:1500]}")
            raise

    def on_kill(self) -> None:
        super().on_kill()  # type: ignore[misc]
        self._fail("its task was killed (stopped from the UI, or timed out)")


class KubernetesTrialOperator(_PodTrialMixin, KubernetesTrainOperator):
    ui_color = "#e8e0ff"

    def __init__(self, *, spec: ModelSpec, catalogue: Catalogue, trial: dict[str, Any], **kwargs):
        super().__init__(spec=spec, catalogue=catalogue, **kwargs)
        self.trial = trial
        self.name = f"trial-{spec.name.replace('_', '-')}"


class GKETrialOperator(_PodTrialMixin, GKETrainOperator):
    ui_color = "#e8e8ff"

    def __init__(self, *, spec: ModelSpec, catalogue: Catalogue, trial: dict[str, Any], **kwargs):
        super().__init__(spec=spec, catalogue=catalogue, **kwargs)
        self.trial = trial
        self.name = f"trial-{spec.name.replace('_', '-')}"
