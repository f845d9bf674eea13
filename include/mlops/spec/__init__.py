"""The model spec: one YAML file per model, typed, checked all at once.

`load_spec(path)` returns a `ModelSpec` or raises `SpecError` listing every problem with the file,
the field and how to fix it. Only pydantic and PyYAML are imported here: the DAG factory calls this
at parse time.

    models.py   the sections of a spec, its DAG ids, assets and start
    errors.py   SpecError, pydantic's errors said with their fix
    checks.py   every check in one pass: shapes, rules across sections, trainer packages, pools, suites
    suite.py    the schema of a GX suite file
    loader.py   reading a spec file and checking it
    files.py    which file of a folder defines which model
    cli.py      the command line

Command line:
    python -m mlops.spec validate include/models/*.yaml
    python -m mlops.spec schema > model-spec.schema.json
"""

from mlops.documents import read_yaml
from mlops.drift.monitoring_spec import DriftThresholds, Monitoring, Quality
from mlops.spec.checks import PRESETS, in_packages, valid_cron
from mlops.spec.errors import SpecError
from mlops.spec.files import FILE_NAME_RULE, SPEC_SUFFIXES, SpecFiles, scan_models_dir, scan_spec_files, spec_paths
from mlops.spec.loader import MAX_SPEC_BYTES, load_spec, parse_spec
from mlops.spec.models import (
    API_VERSION,
    ASSET_KINDS,
    DAG_KINDS,
    MAX_DESCRIPTION,
    NAME_PATTERN,
    NOTIFICATION_EVENTS,
    Compute,
    Dataset,
    DuplicateRows,
    Evaluation,
    Feature,
    Guardrail,
    Holdout,
    ModelSpec,
    NotificationEvent,
    Notifications,
    Promotion,
    Range,
    Scoring,
    Trainer,
    Validation,
    Window,
    asset_uri,
    dag_id,
    json_schema,
)
from mlops.spec.suite import SuiteItem, load_suite, unknown_expectations

__all__ = [
    "API_VERSION", "ASSET_KINDS", "DAG_KINDS", "FILE_NAME_RULE", "MAX_DESCRIPTION", "MAX_SPEC_BYTES", "NAME_PATTERN",
    "NOTIFICATION_EVENTS", "PRESETS", "SPEC_SUFFIXES", "Compute", "Dataset", "DriftThresholds", "DuplicateRows",
    "Evaluation", "Feature", "Guardrail", "Holdout", "ModelSpec", "Monitoring", "NotificationEvent", "Notifications",
    "Promotion", "Quality", "Range", "Scoring", "SpecError", "SpecFiles", "SuiteItem", "Trainer", "Validation",
    "Window", "asset_uri", "dag_id", "in_packages", "json_schema", "load_spec", "load_suite", "parse_spec",
    "read_yaml", "scan_models_dir", "scan_spec_files", "spec_paths", "unknown_expectations", "valid_cron",
]
