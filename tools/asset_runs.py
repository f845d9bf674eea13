"""Start and run an asset-triggered DAG run the way the scheduler does, for the laptop demo (which has no
scheduler): the scheduler's own code creates the run from the queued asset events (consuming them and
clearing the queue), then its tasks run in-process one after another, as `dag.test()` runs them. The
private Airflow calls this needs go through tools.airflow_private."""

from __future__ import annotations

from tools import airflow_private


def start_asset_triggered_run(dag_id: str) -> str | None:
    """Create the run the scheduler would create from the queue; returns its run_id, or None if nothing
    is queued for the DAG (or the DAG is paused)."""
    from airflow.models.asset import AssetDagRunQueue
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunType

    with create_session() as session:
        if not session.query(AssetDagRunQueue).filter(AssetDagRunQueue.target_dag_id == dag_id).count():
            return None
        dag_model = session.query(DagModel).filter(DagModel.dag_id == dag_id).one()
        before = {r.run_id for r in session.query(DagRun).filter(DagRun.dag_id == dag_id)}
        airflow_private.create_asset_triggered_runs([dag_model], session)
        session.flush()
        created = [r for r in session.query(DagRun).filter(DagRun.dag_id == dag_id,
                                                             DagRun.run_type == DagRunType.ASSET_TRIGGERED)
                   if r.run_id not in before]
        return created[0].run_id if created else None


def run_existing(dag, run_id: str) -> str:
    """Run the tasks of an existing DAG run in this process until it finishes; returns its state."""
    from airflow.models.dagrun import DagRun
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState

    with create_session() as session:
        dr = session.query(DagRun).filter(DagRun.dag_id == dag.dag_id, DagRun.run_id == run_id).one()
        dr.dag = SerializedDagModel.get_dag(dag.dag_id, session=session)
        dr.state = DagRunState.RUNNING
        session.commit()
        while dr.state == DagRunState.RUNNING:
            session.expire_all()
            schedulable, _ = dr.update_state(session=session)
            for ti in schedulable:
                if ti.state != TaskInstanceState.UP_FOR_RESCHEDULE:
                    ti.try_number += 1
                ti.state = TaskInstanceState.SCHEDULED
            session.commit()
            scheduled = [ti for ti in dr.get_task_instances(session=session) if ti.state == TaskInstanceState.SCHEDULED]
            if not scheduled and dr.state == DagRunState.RUNNING:
                import time

                time.sleep(1)  # retries waiting for their delay
            for ti in scheduled:
                airflow_private.run_task_in_process(ti, dag.task_dict[ti.task_id])
        return str(getattr(dr.state, "value", dr.state))
