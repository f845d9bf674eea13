"""The GKE flavour of the training pod: GKEStartPodOperator gets the cluster's credentials from the
Google connection; everything about the pod is shared with the Kubernetes backend."""

from __future__ import annotations

from airflow.providers.google.cloud.operators.kubernetes_engine import GKEStartPodOperator

from mlops.compute import Catalogue
from mlops.settings import ClusterSettings
from mlops.spec import ModelSpec
from mlops_airflow.links import TRAIN_LINKS
from mlops_airflow.operators.train_kubernetes import _TrainingPodMixin, pod_arguments


class GKETrainOperator(_TrainingPodMixin, GKEStartPodOperator):
    ui_color = "#e0f0ff"
    # The provider leaves this attribute unannotated, so mypy narrows it to a one-link tuple; BaseOperator's
    # declared type is Collection[BaseOperatorLink].
    operator_extra_links = (*GKEStartPodOperator.operator_extra_links, *TRAIN_LINKS)  # type: ignore[assignment]

    def __init__(self, *, spec: ModelSpec, catalogue: Catalogue, cluster: ClusterSettings | None = None,
                 validate_task_id: str = "validate_data", chosen_task_id: str | None = None, **kwargs):
        cluster = cluster or ClusterSettings.from_env()
        kwargs.setdefault("retries", spec.compute.retries)  # the last retry picks the fallback pool
        missing = [n for n, v in (("MLOPS_GKE_PROJECT", cluster.gke_project),
                                  ("MLOPS_GKE_LOCATION", cluster.gke_location),
                                  ("MLOPS_GKE_CLUSTER", cluster.gke_cluster)) if not v]
        if missing:
            raise ValueError(f"{spec.name}: the gke backend needs {', '.join(missing)} in the environment "
                             "(the cluster to run training pods on)")
        super().__init__(**{**pod_arguments(spec, catalogue, "gke", cluster),
                            "project_id": cluster.gke_project, "location": cluster.gke_location,
                            "cluster_name": cluster.gke_cluster, "gcp_conn_id": cluster.gcp_conn_id, **kwargs})
        self.spec, self.catalogue, self.backend, self.cluster = spec, catalogue, "gke", cluster
        self.validate_task_id = validate_task_id
        self.chosen_task_id = chosen_task_id  # a sweep's select_best: its parameters instead of the form's
