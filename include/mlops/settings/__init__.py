"""Platform settings: where state lives and how training runs, read from the environment so a pod and a
laptop agree. Every `MLOPS_*` variable is declared once in `mlops.settings.model`; nothing else reads them.

Defaults put everything under `<project>/.local` (git-ignored): SQLite MLflow store, data, audit log,
locks and validation reports. Production points the same variables at a tracking server and buckets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import TypeAdapter, ValidationError

from mlops.settings.errors import SettingsError, describe
from mlops.settings.model import VARIABLES, ClusterSettings, ComputeBackend, PlatformSettings, environ_subset, read

Settings = PlatformSettings

__all__ = ["VARIABLES", "ClusterSettings", "ComputeBackend", "PlatformSettings", "Settings", "SettingsError",
           "get_settings", "load", "parse_bool", "trainer_packages"]

_last: tuple[tuple[object, ...], PlatformSettings] | None = None


def load(environ: Mapping[str, str] | None = None) -> PlatformSettings:
    """The settings from `environ` (default: the process environment), every bad variable in one error."""
    try:
        return read(environ)
    except ValidationError as exc:
        raise SettingsError(describe(exc, environ if environ is not None else os.environ)) from None


def get_settings() -> PlatformSettings:
    """Fresh on every call (tests and subprocesses change the environment between calls), yet cheap: the
    last result is reused while the variables it was read from, and the working directory, are the same."""
    global _last
    key = (os.getcwd(), *sorted(environ_subset().items()))
    if _last is not None and _last[0] == key:
        return _last[1]
    settings = load()
    _last = (key, settings)
    return settings


def trainer_packages() -> tuple[str, ...]:
    """`MLOPS_TRAINER_PACKAGES`: the top-level packages whose modules specs may name."""
    return get_settings().trainer.packages


_BOOL = TypeAdapter(bool)


def parse_bool(value: object) -> bool:
    """The one true/false parser (pydantic's: true/false, 1/0, yes/no, on/off, any case)."""
    try:
        return _BOOL.validate_python(value.strip() if isinstance(value, str) else value)
    except ValidationError:
        raise ValueError(f"{value!r} is not true or false: give true/false, 1/0, yes/no or on/off") from None
