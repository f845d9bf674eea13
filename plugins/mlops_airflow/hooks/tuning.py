"""`StudyStorageHook`: the database the sweeps' Optuna studies live in.

`MLOPS_TUNING_CONN_ID` names an Airflow connection (conn_type postgres: host, port, login, password, schema =
the database) to a database of the studies' own; without it, `MLOPS_TUNING_STORAGE` (a SQLAlchemy URL, by default
SQLite under the platform's home). Airflow's metadata database is refused: tasks must not write to it, and a
study's tables have no business beside the scheduler's.
"""

from __future__ import annotations

from airflow.sdk import BaseHook

from mlops.tuning.storage import StudyStorageError, open_storage


class StudyStorageHook(BaseHook):
    hook_name = "Optuna study storage"

    def __init__(self, conn_id: str | None = None, **kwargs):
        super().__init__(**kwargs)
        from mlops.settings import get_settings

        self.conn_id = conn_id if conn_id is not None else get_settings().tuning.conn_id

    def url_and_source(self) -> tuple[str, str]:
        """The SQLAlchemy URL and where it came from (for messages)."""
        from mlops.settings import get_settings

        if not self.conn_id:
            return get_settings().tuning.storage_url, "MLOPS_TUNING_STORAGE"
        try:
            conn = self.get_connection(self.conn_id)
        except Exception as exc:  # noqa: BLE001 - AirflowNotFoundException, or a secrets backend that failed
            raise StudyStorageError(
                f"the Airflow connection '{self.conn_id}' (MLOPS_TUNING_CONN_ID) for the study storage cannot be "
                f"read: {exc}. Create it (conn type postgres, pointing at a database of its own) or unset "
                "MLOPS_TUNING_CONN_ID to use MLOPS_TUNING_STORAGE") from exc
        return conn.get_uri(), f"the Airflow connection '{self.conn_id}'"

    def get_conn(self):
        """Optuna's RDB storage, tables created on first use."""
        url, source = self.url_and_source()
        return open_storage(url, source, forbidden=_metadata_database())


def _metadata_database() -> str | None:
    try:
        from airflow.configuration import conf

        return conf.get("database", "sql_alchemy_conn", fallback=None)
    except Exception:  # noqa: BLE001 - not readable where the task runs: nothing to compare with
        return None


__all__ = ["StudyStorageError", "StudyStorageHook"]
