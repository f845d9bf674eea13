"""Maintenance tasks for the cluster backends: keep the Airflow pools in line with the catalogue, and
remove training pods that no task is waiting for any more. Both talk to Airflow through its REST API."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException


def _skip_without_cluster(cluster_backends: list[str]) -> None:
    if not cluster_backends:
        raise AirflowSkipException("no model trains on a cluster (every spec resolves to the local backend); "
                                   "nothing to maintain")


def _connection_defined(conn_id: str) -> bool:
    from airflow.sdk import BaseHook

    try:
        BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - the SDK raises its own not-found type
        return False
    return True


class SyncAirflowPoolsOperator(BaseOperator):
    """Create or update the catalogue's Airflow pools and each model's promotion pool, so no task waits on a
    pool that is missing."""

    template_fields = ("dry_run",)
    ui_color = "#f0f0e0"
    # The DAG's `dry_run` param (a bool, or its rendered string): as a template field it is an instance attribute
    # that shadows BaseOperator's dry_run() method, which nothing calls.
    dry_run: Any

    def __init__(self, *, cluster_backends: list[str], api_conn_id: str, dry_run=False, **kwargs):
        super().__init__(**kwargs)
        self.cluster_backends, self.api_conn_id, self.dry_run = list(cluster_backends), api_conn_id, dry_run

    def execute(self, context) -> list[str]:
        from mlops_airflow.hooks.airflow_api import AirflowApi
        from mlops_airflow.pools import plan_changes

        if not self.cluster_backends and not _connection_defined(self.api_conn_id):
            # Promotion pools matter on every backend, but a laptop has no API connection: its pools come
            # from `make pools` (and the chart's init container in a deployment).
            raise AirflowSkipException(f"every model trains locally and the connection '{self.api_conn_id}' is not "
                                       "defined; pools are synced by `python -m mlops_airflow.pools sync`")
        api = AirflowApi.from_connection(self.api_conn_id)

        def current(name):
            pool = api.pool(name)
            return None if pool is None else (pool["slots"], pool.get("description"), pool.get("include_deferred"))

        changes = plan_changes(current)
        for change in changes:
            self.log.info("%s%s", "[dry run] " if _truthy(self.dry_run) else "", change)
            if not _truthy(self.dry_run):
                api.put_pool(change.name, change.slots, change.description, include_deferred=True)
        if not changes:
            self.log.info("Airflow pools already match the catalogue")
        return [str(c) for c in changes]


class ReapOrphanPodsOperator(BaseOperator):
    """Delete this platform's pods whose task instance is over (or has moved on to a later try).

    Pods are found by the platform's label; each pod's annotations name its task instance, whose state
    comes from the REST API. Pods younger than `min_age_minutes` are left alone (their task may not have
    reported yet). Returns what it removed, with the reason for each."""

    template_fields = ("min_age_minutes", "dry_run")
    ui_color = "#f0e0e0"
    # The DAG's `dry_run` param (a bool, or its rendered string): as a template field it is an instance attribute
    # that shadows BaseOperator's dry_run() method, which nothing calls.
    dry_run: Any

    def __init__(self, *, cluster_backends: list[str], api_conn_id: str, min_age_minutes=15, dry_run=False,
                 **kwargs):
        super().__init__(**kwargs)
        self.cluster_backends, self.api_conn_id = list(cluster_backends), api_conn_id
        self.min_age_minutes, self.dry_run = min_age_minutes, dry_run

    def execute(self, context) -> list[dict]:
        from datetime import timedelta

        from kubernetes.client import ApiClient
        from kubernetes.client.exceptions import ApiException

        from mlops.orphans import MANAGED_SELECTOR, TaskKey, find_orphans
        from mlops.settings import ClusterSettings
        from mlops_airflow.hooks.airflow_api import AirflowApi

        _skip_without_cluster(self.cluster_backends)
        cluster = ClusterSettings.from_env()
        v1 = _core_v1(cluster, self.cluster_backends)
        api = AirflowApi.from_connection(self.api_conn_id)
        pods = v1.list_namespaced_pod(cluster.namespace, label_selector=MANAGED_SELECTOR).items
        plain = [ApiClient().sanitize_for_serialization(p) for p in pods]

        def task_state(key: TaskKey):
            return api.task_state(key.dag_id, key.run_id, key.task_id)

        orphans = find_orphans(plain, task_state, grace=timedelta(minutes=float(self.min_age_minutes)))
        dry = _truthy(self.dry_run)
        removed = []
        for orphan in orphans:
            if not dry:
                try:
                    v1.delete_namespaced_pod(orphan.name, orphan.namespace)
                except ApiException as exc:
                    if exc.status != 404:  # already gone is what we wanted
                        raise
            removed.append({"namespace": orphan.namespace, "pod": orphan.name, "reason": orphan.reason})
            self.log.warning("%s %s/%s: %s", "would delete" if dry else "deleted", orphan.namespace, orphan.name,
                             orphan.reason)
        self.log.info("%d platform pod(s) in namespace %s, %d orphan(s) %s", len(pods), cluster.namespace,
                      len(removed), "found (dry run)" if dry else "deleted")
        return removed


def _core_v1(cluster, backends: list[str]):
    """The cluster's core/v1 API: through the kubernetes connection, or GKE's credentials for `gke`."""
    if "gke" in backends and "kubernetes" not in backends:
        from airflow.providers.google.cloud.hooks.kubernetes_engine import GKEHook, GKEKubernetesHook
        from airflow.providers.google.cloud.operators.kubernetes_engine import GKEClusterAuthDetails
        from kubernetes import client

        url, ca = GKEClusterAuthDetails(
            cluster_name=cluster.gke_cluster, project_id=cluster.gke_project, use_internal_ip=False,
            use_dns_endpoint=False,
            cluster_hook=GKEHook(gcp_conn_id=cluster.gcp_conn_id, location=cluster.gke_location),
        ).fetch_cluster_info()
        return client.CoreV1Api(GKEKubernetesHook(gcp_conn_id=cluster.gcp_conn_id, cluster_url=url,
                                                  ssl_ca_cert=ca).get_conn())
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    return KubernetesHook(conn_id=cluster.kubernetes_conn_id).core_v1_client


def _truthy(value) -> bool:
    """Rendered params arrive as strings when templated."""
    from mlops.settings import parse_bool

    return parse_bool(value)
