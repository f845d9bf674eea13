"""What only Airflow knows about a model: its DAGs' schedule state, read from the metadata DB by the API
server (the process this app lives in)."""

from __future__ import annotations


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def dag_states(dag_ids: set[str]) -> dict[str, dict]:
    """dag_id -> next_dagrun (the next run's logical date), next_dagrun_create_after (when the scheduler
    creates it), paused, stale, schedule summary. DAGs the DB does not know are left out."""
    if not dag_ids:
        return {}
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(DagModel.dag_id, DagModel.next_dagrun, DagModel.next_dagrun_create_after, DagModel.is_paused,
                   DagModel.is_stale, DagModel.timetable_summary).where(DagModel.dag_id.in_(sorted(dag_ids)))
        ).all()
    return {r.dag_id: {"next_dagrun": _iso(r.next_dagrun), "next_dagrun_create_after": _iso(r.next_dagrun_create_after),
                       "is_paused": bool(r.is_paused), "is_stale": bool(r.is_stale),
                       "timetable_summary": r.timetable_summary} for r in rows}
