"""OpenLineage for the platform's operators: what each task read and wrote, as the OpenLineage provider asks
for it (`get_openlineage_facets_on_complete` / `_on_failure`, called by the provider's listener after the
task ran, on the same operator object).

Operators note what they touched while they run (`note_lineage`); the methods here turn the notes into
datasets and facets (mlops.lineage.datasets gives the names and the facts). Nothing is emitted unless the
OpenLineage provider is configured ([openlineage] transport); it is off on the embedded defaults. The
provider redacts what Airflow's secrets masker knows, and nothing here ever carries a credential: dataset
namespaces have user:password@ removed, and no connection or environment is read into a facet.
"""

from __future__ import annotations

from typing import Any

import attr

try:  # the provider's facet base: present wherever the provider is installed
    from openlineage.client.facet_v2 import RunFacet
except ImportError:  # pragma: no cover - a deployment without the provider emits nothing anyway
    RunFacet = object  # type: ignore[assignment,misc]

FACET = "mlops"  # the run facet's key


@attr.define
class MlopsRunFacet(RunFacet):
    """The platform's facts about a task's run: the model, its MLflow run and version, the data fingerprint,
    the code (spec hash, code version, git sha, image digest), cost, and approval."""

    model: str
    task: str
    facts: dict[str, Any] = attr.field(factory=dict)

    @staticmethod
    def _get_schema() -> str:
        return "https://github.com/mlops-airflow/mlops-airflow/blob/main/docs/lineage.md#mlops-run-facet"


class LineageMixin:
    """Collects the task's lineage while it runs; the provider's listener reads it afterwards."""

    spec: Any
    task_id: str

    def note_lineage(self, **facts: Any) -> None:
        notes = getattr(self, "_lineage_notes", None) or {}
        notes.update({k: v for k, v in facts.items() if v is not None})
        self._lineage_notes = notes

    def _notes(self) -> dict[str, Any]:
        return dict(getattr(self, "_lineage_notes", None) or {})

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        return build(self.spec, self.task_id, self._notes())

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        return build(self.spec, self.task_id, self._notes())


def training_notes(upstream: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """What a train task read (the validated window) and wrote (the version; a cache hit reads the reused one)."""
    facts = {k: result.get(k) for k in ("fingerprint", "spec_hash", "code_version", "git_sha", "image_digest",
                                        "cache_hit", "model_uri")}
    facts["mlflow_run_id"] = result.get("run_id")
    facts["usage"] = result.get("usage")
    return {"window": upstream or None, "model_version": result.get("model_version"),
            "writes_model": not result.get("cache_hit"), "facts": facts}


def build(spec: Any, task_id: str, notes: dict[str, Any]) -> Any:
    """The OperatorLineage of one task from its notes:

    - window (first/last day, partition rows): each partition read, with the spec's schema and row count;
      with `validation` (result path) also the data-quality assertions of every expectation that ran
    - model_version: the registered version written (train) or read (score, monitor, promote)
    - outputs: other files written (predictions), as URIs; requests: assets emitted (retraining)
    - facts: the run facet's content (MLflow run, fingerprint, code, cost, approval)
    """
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.facet_v2 import (
        data_quality_assertions_dataset as dqa,
    )
    from openlineage.client.facet_v2 import (
        data_quality_metrics_input_dataset as dqm,
    )
    from openlineage.client.facet_v2 import (
        schema_dataset,
    )

    from mlops.lineage import datasets
    from mlops.settings import get_settings

    settings = get_settings()
    schema = schema_dataset.SchemaDatasetFacet(fields=[
        schema_dataset.SchemaDatasetFacetFields(name=f["name"], type=f["type"], description=f["description"] or None)
        for f in datasets.schema(spec)])
    inputs: list[Any] = []
    outputs: list[Any] = []
    window = notes.get("window")
    if window:
        assertions = [dqa.Assertion(assertion=a["assertion"], success=a["success"], column=a["column"],
                                    name=a["batch"], description=a["description"] or None)
                      for a in datasets.assertions(notes.get("validation"))]
        rows = window.get("partition_rows") or {}
        for day, namespace, name in datasets.partitions(spec, settings.data_root, window["window_first_day"],
                                                        window["window_last_day"]):
            input_facets: dict[str, Any] = {}
            if rows.get(day) is not None:
                input_facets["dataQualityMetrics"] = dqm.DataQualityMetricsInputDatasetFacet(
                    columnMetrics={}, rowCount=rows[day])
            if assertions:
                input_facets["dataQualityAssertions"] = dqa.DataQualityAssertionsDatasetFacet(assertions=assertions)
            inputs.append(InputDataset(namespace=namespace, name=name, facets={"schema": schema},
                                       inputFacets=input_facets))
    for uri in notes.get("reads") or []:
        namespace, name = datasets.location(uri)
        inputs.append(InputDataset(namespace=namespace, name=name, facets={"schema": schema}))
    version = notes.get("model_version")
    if version:
        namespace, name = datasets.model_version(settings.tracking_uri, spec.name, str(version))
        target = outputs if notes.get("writes_model") else inputs
        target.append((OutputDataset if target is outputs else InputDataset)(namespace=namespace, name=name))
    for uri in notes.get("writes") or []:
        namespace, name = datasets.location(uri)
        outputs.append(OutputDataset(namespace=namespace, name=name))
    for uri in notes.get("requests") or []:
        namespace, _, name = uri.partition("://")
        outputs.append(OutputDataset(namespace=f"{namespace}://", name=name))
    facts = {k: v for k, v in (notes.get("facts") or {}).items() if v not in (None, "", {})}
    return OperatorLineage(inputs=inputs, outputs=outputs,
                           run_facets={FACET: MlopsRunFacet(model=spec.name, task=task_id, facts=facts)})
