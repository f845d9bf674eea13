"""DAGs that stand for a spec which cannot run: visible in the UI, failing with the reason."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from airflow.sdk import DAG, BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from mlops.spec import dag_id

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


def broken_dag_id(path: Path, owns_model: bool) -> str:
    """A broken spec whose file names a model stands in that model's train DAG; a file that defines no model
    (a second file for a model, a name that is not a model name) gets an id of its own, so it can never
    replace another model's DAG, and two such files never share one."""
    path = Path(path)
    if owns_model:
        return dag_id(path.stem, "train")
    if re.fullmatch(r"[A-Za-z0-9_.-]{1,200}", path.name):
        return f"broken_spec__{path.name}"
    return f"broken_spec__{hashlib.sha256(path.name.encode()).hexdigest()[:12]}"


def broken_spec_dag(path: Path, message: str, owns_model: bool = True) -> DAG:
    with DAG(
        dag_id=broken_dag_id(path, owns_model),
        dag_display_name=f"broken spec: {Path(path).name}",
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
