"""DAGs that stand for a spec which cannot run: visible in the UI, failing with the reason."""

from __future__ import annotations

import re
from pathlib import Path

from airflow.sdk import DAG, BaseOperator
from airflow.sdk.exceptions import AirflowFailException

BROKEN_TAG = "broken-spec"


class SpecErrorOperator(BaseOperator):
    """Fails at once with the message it was built with; never retries."""

    ui_color = "#f8d7da"

    def __init__(self, *, message: str, **kwargs):
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        self.message = message

    def execute(self, context):
        raise AirflowFailException(self.message)


def broken_spec_dag(path: Path, message: str) -> DAG:
    stem = re.sub(r"[^a-zA-Z0-9_]", "_", Path(path).stem)
    with DAG(
        dag_id=f"{stem}__train",
        description=f"BROKEN SPEC {Path(path).name}: fix the file; this DAG refuses to run",
        schedule=None,
        doc_md=f"### This model's spec is broken\n\n```\n{message}\n```\n\nFix the file and the DAG comes back.",
        tags=["mlops", BROKEN_TAG],
        default_args={"owner": "mlops-platform", "retries": 0},
        is_paused_upon_creation=True,
        auto_register=False,
    ) as dag:
        SpecErrorOperator(task_id="spec_error", message=message)
    return dag

