"""The deploy DAG's operators: one per rollout step, each a thin call of `mlops.serving.rollout`.

A failed step fails its task without retries (a candidate that did not pass a gate will not pass it on a
second try) and `roll_back` runs: it stops what the rollout started while the stable version goes on serving.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops.spec import ModelSpec
from mlops_airflow.hooks.mlflow import with_mlflow_connection
from mlops_airflow.links import DEPLOYED_LINKS, VERSION_LINKS
from mlops_airflow.operators.promote import promotion_pool_args

RESOLVE = "resolve_version"
START = "start_candidate"


class _DeployStep(BaseOperator):
    ui_color = "#e8f4f8"

    def __init__(self, *, spec: ModelSpec, **kwargs: Any):
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        self.spec = spec

    def plan(self, context: Any) -> dict[str, Any]:
        plan: dict[str, Any] = context["ti"].xcom_pull(task_ids=RESOLVE)
        return plan

    def candidate_url(self, context: Any) -> str:
        return str(context["ti"].xcom_pull(task_ids=START)["url"])

    def cluster(self, settings: Any) -> Any:
        return serving_cluster(self.spec, settings)

    @with_mlflow_connection
    def execute(self, context: Any) -> Any:
        from mlops.serving.rollout import DeployError
        from mlops.settings import get_settings

        try:
            result = self.step(get_settings(), context)
        except DeployError as exc:
            raise AirflowFailException(str(exc)) from None
        return result

    def step(self, settings: Any, context: Any) -> Any:
        raise NotImplementedError


def serving_cluster(spec: ModelSpec, settings: Any) -> Any:
    """The Kubernetes API client of a cluster backend, through the provider's hook and the kubernetes
    connection (MLOPS_K8S_CONN_ID); None for the local backend."""
    assert spec.serving is not None
    if spec.serving.backend == "local":
        return None
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    return KubernetesHook(conn_id=settings.kubernetes.conn_id).api_client


LOCAL_EXECUTORS = ("LocalExecutor", "SequentialExecutor")


def local_backend_problem(executor: str) -> str | None:
    """The local backend's servers live on the machine that ran start_candidate, and the later steps talk to
    them on loopback: every task of the run must run on that machine, which only the local executors do."""
    names = [e.strip().rsplit(".", 1)[-1] for e in executor.split(",") if e.strip()]
    if names and all(n in LOCAL_EXECUTORS or n.endswith(":LocalExecutor") for n in names):
        return None
    return (f"serving.backend local needs Airflow's LocalExecutor (the tasks of a deploy run must share one "
            f"machine, where the model servers run), and this deployment runs {executor!r}; serve this model from "
            "a cluster backend, or run the deploy on a LocalExecutor deployment")


class ResolveDeploymentOperator(_DeployStep):
    """The version to roll out (the form's, else the champion); skips the whole run when it already serves."""

    operator_extra_links = VERSION_LINKS

    def step(self, settings: Any, context: Any) -> Any:
        from airflow.sdk.configuration import conf

        from mlops.serving import rollout
        from mlops_airflow.runtime import actor

        assert self.spec.serving is not None
        problem = (local_backend_problem(conf.get("core", "executor", fallback="LocalExecutor"))
                   if self.spec.serving.backend == "local" else None)
        if problem:
            raise AirflowFailException(f"{self.spec.name}: {problem}")

        params = context["params"]
        who = actor(context)
        by = getattr(context.get("dag_run"), "triggering_user_name", None)
        if by:
            who = f"{by} via {who}"
        try:
            plan = rollout.resolve(settings, self.spec, str(params.get("version") or "").strip() or None,
                                   who, str(params.get("reason") or "").strip(), cluster=self.cluster(settings))
        except rollout.NothingToDeploy as exc:
            raise AirflowSkipException(str(exc)) from None
        self.log.info("%s: rolling out v%s (serving now: %s)", self.spec.name, plan.version,
                      f"v{plan.from_version}" if plan.from_version else "nothing")
        return plan.to_dict()


class StartCandidateOperator(_DeployStep):
    """Starts the new version beside the stable one and waits until it is ready (or says why it is not)."""

    def step(self, settings: Any, context: Any) -> Any:
        from mlops.serving import rollout

        return rollout.start(settings, self.spec, self.plan(context)["rollout_id"], cluster=self.cluster(settings))


class SmokeTestOperator(_DeployStep):
    """The version's own holdout rows through the endpoint: the scores must equal the offline ones."""

    def step(self, settings: Any, context: Any) -> Any:
        from mlops.serving import rollout

        return rollout.smoke(settings, self.spec, self.plan(context)["rollout_id"], self.candidate_url(context),
            cluster=self.cluster(settings))


class CanaryBakeOperator(_DeployStep):
    """Recent real traffic to the new version (and in shadow to the stable one), judged by the guardrails."""

    def step(self, settings: Any, context: Any) -> Any:
        from mlops.serving import rollout

        return rollout.bake(settings, self.spec, self.plan(context)["rollout_id"], self.candidate_url(context),
            cluster=self.cluster(settings))


class SwitchTrafficOperator(_DeployStep):
    """The new version takes the stable address (its replicas beside the old ones until retire)."""

    def step(self, settings: Any, context: Any) -> Any:
        from mlops.serving import rollout

        return rollout.switch(settings, self.spec, self.plan(context)["rollout_id"], cluster=self.cluster(settings))


class RecordDeploymentOperator(_DeployStep):
    """Moves the deployed alias, audited; in the model's promotion pool, so it takes turns with promotions."""

    ui_color = "#f3e8f8"

    def __init__(self, *, spec: ModelSpec, **kwargs: Any):
        super().__init__(spec=spec, **promotion_pool_args(spec, kwargs))

    def step(self, settings: Any, context: Any) -> Any:
        from mlops.serving import rollout

        return rollout.record(settings, self.spec, self.plan(context)["rollout_id"])


class RetireOldVersionOperator(_DeployStep):
    """Drains and stops the version that served before; the rollout is done."""

    operator_extra_links = DEPLOYED_LINKS

    def step(self, settings: Any, context: Any) -> Any:
        from mlops.serving import rollout

        result = rollout.retire(settings, self.spec, self.plan(context)["rollout_id"], cluster=self.cluster(settings))
        self.log.info("%s: v%s serves at %s (%s)", self.spec.name, result["to_version"], result["endpoint"],
                      result["timeline"])
        return result


class RollBackDeploymentOperator(_DeployStep):
    """Runs when a step failed: stops the candidate, the stable version keeps serving. Succeeds when the
    rollback did (the run is failed anyway, by the failed step)."""

    ui_color = "#fde8e8"

    def step(self, settings: Any, context: Any) -> Any:
        from mlops.serving import rollout

        plan = self.plan(context)
        if not plan:
            raise AirflowSkipException("the rollout never started (resolve failed): nothing to roll back")
        result = rollout.roll_back(settings, self.spec, plan["rollout_id"], cluster=self.cluster(settings))
        self.log.warning("%s", result["message"])
        return result
