"""An emulated Kubernetes cluster for tests: a real HTTP API server on 127.0.0.1 that the `kubernetes`
and `kubernetes_asyncio` clients and Airflow's KubernetesPodOperator talk to through a kubeconfig, and a
node agent that schedules pods onto fake nodes and runs their containers as local processes.

Test support code, standard library only (plus kubernetes_validate for pod admission). See cluster.py.
"""

from .agent import FAILURES, INJECT_LABEL
from .cluster import Cluster

__all__ = ["Cluster", "FAILURES", "INJECT_LABEL"]
