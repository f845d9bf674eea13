"""The studies' database: Optuna's RDB storage on SQLite (the embedded default, under the platform's home) or
PostgreSQL (production: a database of its own, from an Airflow connection the plugin resolves to a URL)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.storages import RDBStorage


class StudyStorageError(RuntimeError):
    """The study storage cannot be reached or must not be used."""


def shown(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as the scheme only
        return url.split(":", 1)[0] + ":..."


def normalised(url: str) -> str:
    """SQLAlchemy 2 spells PostgreSQL `postgresql://`; Airflow connections write `postgres://`."""
    for prefix in ("postgres://", "postgres+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def same_database(a: str, b: str) -> bool:
    """Whether two SQLAlchemy URLs name one database (host, port and name; SQLite by its file)."""
    from sqlalchemy.engine import make_url

    try:
        ua, ub = make_url(normalised(a)), make_url(normalised(b))
    except Exception:  # noqa: BLE001 - not comparable, so not known to be the same
        return False
    if ua.get_backend_name() != ub.get_backend_name():
        return False
    if ua.get_backend_name() == "sqlite":
        return bool(ua.database) and bool(ub.database) and \
            Path(str(ua.database)).resolve() == Path(str(ub.database)).resolve()
    return (ua.host or "localhost", ua.port or 5432, ua.database) == (ub.host or "localhost", ub.port or 5432,
                                                                        ub.database)


def open_storage(url: str, source: str, forbidden: str | None = None) -> RDBStorage:
    """The storage at `url` (tables created on first use). `source` says where the URL came from (the Airflow
    connection or the variable) so that an error names it; `forbidden` is a database it must not be (Airflow's
    metadata database)."""
    url = normalised(url)
    if forbidden and same_database(url, forbidden):
        raise StudyStorageError(
            f"the study storage from {source} ({shown(url)}) is Airflow's metadata database; give the studies a "
            "database of their own (e.g. CREATE DATABASE optuna) and point the connection there")
    import optuna
    from optuna.storages import RDBStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    engine: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # Trials of one sweep finish together: wait for the writer instead of failing on "database is locked".
        engine["connect_args"] = {"timeout": 60}
    elif url.startswith("postgresql"):
        engine["connect_args"] = {"connect_timeout": 10}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return RDBStorage(url, engine_kwargs=engine)
    except Exception as exc:  # noqa: BLE001 - every way of not reaching it gets the same explanation
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StudyStorageError(
            f"cannot reach the study storage from {source} ({shown(url)}): {first}. Check that the database "
            "exists and accepts this connection (host, port, user, password), or fix the connection") from exc
