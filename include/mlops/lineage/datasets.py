"""What the platform's tasks read and write, named as OpenLineage names datasets, with the facts their facets
carry. Plain data (dicts and tuples); the Airflow layer builds the OpenLineage objects."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mlops.spec import ModelSpec

_TYPES = {"int": "integer", "float": "double", "category": "string", "bool": "boolean"}


def location(uri: str) -> tuple[str, str]:
    """(namespace, name) of a file or object: `file` and the absolute path, or `gs://bucket` and the key."""
    if "://" not in uri or uri.startswith("file://"):
        path = uri.removeprefix("file://")
        return "file", str(Path(path).resolve())
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")


def without_credentials(uri: str) -> str:
    """A URI with any user:password@ removed: dataset namespaces are shown everywhere."""
    if "://" not in uri:
        return uri
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def model_version(tracking_uri: str, model: str, version: str) -> tuple[str, str]:
    """A registered model version as a dataset: the tracking store it lives in, and models/<model>/<version>."""
    store = without_credentials(tracking_uri)
    if "://" in store and not store.startswith(("http://", "https://")):  # sqlite:///path -> sqlite:<path>
        scheme, _, rest = store.partition("://")
        store = f"{scheme}:{rest}"
    return f"mlflow+{store}", f"models/{model}/{version}"


def schema(spec: ModelSpec, with_target: bool = True) -> list[dict[str, str]]:
    """The dataset's columns as the spec declares them (OpenLineage schema facet fields)."""
    ds = spec.dataset
    fields = [{"name": name, "type": _TYPES.get(f.type, f.type),
               "description": ("nullable" if f.nullable else "")} for name, f in ds.features.items()]
    if with_target:
        kind = "label" if spec.dataset.task == "binary_classification" else "target"
        fields.append({"name": ds.target, "type": "double", "description": kind})
    return fields


def partitions(spec: ModelSpec, data_root: str, first_day: str, last_day: str) -> list[tuple[str, str, str]]:
    """(day, namespace, name) of every daily partition of a window."""
    from mlops.data import partition_uri

    start, end = date.fromisoformat(first_day), date.fromisoformat(last_day)
    out = []
    day = start
    while day <= end:
        out.append((day.isoformat(), *location(partition_uri(spec, data_root, day))))
        day += timedelta(days=1)
    return out


def assertions(result_path: str | None) -> list[dict[str, Any]]:
    """Every expectation the validation ran (OpenLineage data-quality assertions): its type, column, outcome,
    and the suite batch it belongs to (rows or partitions)."""
    if not result_path or not Path(result_path).is_file():
        return []
    raw = json.loads(Path(result_path).read_text()).get("gx_results") or {}
    out = []
    for batch, result in raw.items():
        for r in result.get("results") or []:
            config = r.get("expectation_config") or {}
            kwargs = config.get("kwargs") or {}
            out.append({"assertion": config.get("type", "?"), "success": bool(r.get("success")),
                        "column": kwargs.get("column"), "batch": batch,
                        "description": (config.get("meta") or {}).get("description", "")})
    return out
