"""Thin operators over the core: each reads the context, calls one core function, returns small JSON."""

from mlops_airflow.operators.evaluate import EvaluateModelOperator
from mlops_airflow.operators.monitor import MonitorOperator, RequestRetrainingOperator
from mlops_airflow.operators.promote import PromoteModelOperator
from mlops_airflow.operators.score import ScoreOperator
from mlops_airflow.operators.train_local import LocalTrainOperator
from mlops_airflow.operators.validate import ValidateDataOperator

__all__ = ["EvaluateModelOperator", "LocalTrainOperator", "MonitorOperator", "PromoteModelOperator",
           "RequestRetrainingOperator", "ScoreOperator", "ValidateDataOperator"]
