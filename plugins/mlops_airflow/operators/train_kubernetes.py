"""Training pods: a KubernetesPodOperator subclass that only builds arguments (GKE: train_gke.py).

`execute`, the trigger, log streaming, XCom sidecar and pod deletion are the provider's. What this adds:
the pod from the platform's plan (GPU resources, pool placement, non-root security context, labels,
the tracking Secret by reference), the entrypoint's arguments rendered from the run's context (the same
`build_arguments` the local backend uses), and the spot pool's on-demand fallback on the last try.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes.client import models as k8s

from mlops.compute import Catalogue
from mlops.podplan import RUN_AS, PodPlan, plan_pod
from mlops.settings import ClusterSettings, get_settings
from mlops.spec import ModelSpec
from mlops.train import DEFAULT_RESULT_PATH
from mlops_airflow.lineage import LineageMixin, training_notes
from mlops_airflow.links import TRAIN_LINKS


def _env_vars(plan: PodPlan) -> list[k8s.V1EnvVar]:
    plain = [k8s.V1EnvVar(name=k, value=v) for k, v in sorted(plan.env.items())]
    from_secret = [
        k8s.V1EnvVar(name=s.name, value_from=k8s.V1EnvVarSource(
            secret_key_ref=k8s.V1SecretKeySelector(name=s.secret, key=s.key, optional=s.optional)))
        for s in plan.secret_env
    ]
    return plain + from_secret


def _tolerations(plan: PodPlan) -> list[k8s.V1Toleration]:
    return [k8s.V1Toleration(**t) for t in plan.tolerations]


def _container_security() -> k8s.V1SecurityContext:
    return k8s.V1SecurityContext(allow_privilege_escalation=False, privileged=False, run_as_non_root=True,
                                 capabilities=k8s.V1Capabilities(drop=["ALL"]))


def pod_arguments(spec: ModelSpec, catalogue: Catalogue, backend: str, cluster: ClusterSettings) -> dict:
    """Keyword arguments for the provider's operator, from the first-try plan."""
    plan = plan_pod(spec, catalogue, backend, get_settings(), cluster)
    return dict(
        namespace=cluster.namespace,
        image=plan.image,
        name=f"train-{spec.name.replace('_', '-')}",
        random_name_suffix=True,
        cmds=["python", "-m", "mlops.train"],
        arguments=[],  # rendered per run in render_template_fields
        env_vars=_env_vars(plan),
        labels=dict(plan.labels),
        annotations=dict(plan.annotations),
        node_selector=dict(plan.node_selector),
        tolerations=_tolerations(plan),
        container_resources=k8s.V1ResourceRequirements(requests=plan.requests, limits=plan.limits),
        security_context=k8s.V1PodSecurityContext(
            run_as_non_root=True, run_as_user=RUN_AS, run_as_group=RUN_AS, fs_group=RUN_AS,
            seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault")),
        container_security_context=_container_security(),
        xcom_sidecar_container_security_context=_container_security(),
        service_account_name=cluster.service_account,
        image_pull_policy=cluster.image_pull_policy,
        pool=plan.airflow_pool,
        pool_slots=plan.airflow_pool_slots,
        schedule_timeout_seconds=cluster.schedule_timeout_s,
        startup_timeout_seconds=cluster.startup_timeout_s,
        active_deadline_seconds=plan.active_deadline_seconds,
        deferrable=True,
        on_finish_action="delete_succeeded_pod" if cluster.keep_failed_pods else "delete_pod",
        on_kill_action="delete_pod",
        do_xcom_push=True,
        get_logs=True,
        log_events_on_failure=True,
        log_pod_spec_on_failure=False,  # the reason is classified below; the raw pod is noise
        reattach_on_restart=True,
    )


def container_seconds(statuses, name: str) -> float:
    """How long the named container ran, from its terminated state's start and end (0 when not known)."""
    for status in statuses:
        terminated = getattr(getattr(status, "state", None), "terminated", None)
        if getattr(status, "name", None) == name and terminated is not None:
            started, finished = terminated.started_at, terminated.finished_at
            if started is not None and finished is not None:
                return max((finished - started).total_seconds(), 0.0)
    return 0.0


if TYPE_CHECKING:
    # The mixin only runs in front of KubernetesPodOperator (or GKEStartPodOperator, its subclass): type it as one,
    # so its uses of the operator's attributes and its super() calls are checked. At runtime it stays a plain mixin.
    _PodOperatorBase = KubernetesPodOperator
else:
    _PodOperatorBase = object


class _TrainingPodMixin(LineageMixin, _PodOperatorBase):
    """Shared by both operators: per-run arguments and the last-try fallback, nothing else."""

    spec: ModelSpec
    catalogue: Catalogue
    backend: str
    cluster: ClusterSettings
    validate_task_id: str
    chosen_task_id: str | None

    def render_template_fields(self, context, jinja_env=None) -> None:
        super().render_template_fields(context, jinja_env)
        self.prepare_pod(context)

    def prepare_pod(self, context) -> None:
        """The run's arguments, the reaper's annotations and the pool of this try (a mapped task's unmapped
        operator is rendered without render_template_fields, so the trials call this from execute)."""
        from mlops.train import build_arguments
        from mlops_airflow.runtime import training_request

        upstream = context["ti"].xcom_pull(task_ids=self.validate_task_id) or {}
        ctx, overrides = training_request(context, self.spec, upstream, self.chosen_task_id)
        # Set after rendering: the spec's JSON is data, never a Jinja template.
        self.arguments = build_arguments(self.spec, ctx, overrides, DEFAULT_RESULT_PATH) + self.extra_arguments()
        ti = context["ti"]
        from mlops import orphans

        # Exact identity for the orphan reaper (labels are truncated and sanitised; annotations are not).
        self.annotations = {**self.annotations, orphans.ANNOTATION_DAG: ti.dag_id, orphans.ANNOTATION_RUN: ti.run_id,
                            orphans.ANNOTATION_TASK: ti.task_id, orphans.ANNOTATION_TRY: str(ti.try_number)}
        pool = context["params"].get("compute_pool") or self.spec.compute.pool
        last_try = int(ti.try_number or 1) > int(self.retries or 0)
        if last_try or pool != self.spec.compute.pool:
            # The trigger form's pool (check_request has vetted it) and, on the last try, a spot pool's fallback.
            spec = self.spec.model_copy(update={"compute": self.spec.compute.model_copy(update={"pool": pool})})
            plan = plan_pod(spec, self.catalogue, self.backend, get_settings(), self.cluster, last_try=last_try)
            self.node_selector = dict(plan.node_selector)
            self.tolerations = _tolerations(plan)
            self.container_resources = k8s.V1ResourceRequirements(requests=plan.requests, limits=plan.limits)
            self.labels = {**self.labels, "mlops.airflow/pool": plan.pool_name}


    def extra_arguments(self) -> list[str]:
        """Arguments after the training ones (a trial's, in the sweep's pod operator)."""
        return []

    def trigger_reentry(self, context, event):
        return self._priced(context, super().trigger_reentry(context, event))

    def execute(self, context):
        return self._priced(context, super().execute(context))

    def _priced(self, context, result):
        """The pod's result with its usage: wall time from the training container's start to its end."""
        if not isinstance(result, dict) or "run_id" not in result:
            return result
        from mlops_airflow.runtime import record_training_cost

        seconds, pool = getattr(self, "_pod_usage", (0.0, None))
        result = record_training_cost(self.spec, context, result, seconds, pool)
        self.note_lineage(**training_notes(context["ti"].xcom_pull(task_ids=self.validate_task_id) or {}, result))
        return result

    def _remember_usage(self, remote_pod) -> None:
        status = remote_pod.status if remote_pod is not None else None
        statuses = list(getattr(status, "container_statuses", None) or [])
        seconds = container_seconds(statuses, self.base_container_name)
        pool = ((remote_pod.metadata.labels or {}).get("mlops.airflow/pool") if remote_pod is not None else None)
        self._pod_usage = (seconds, pool)

    def cleanup(self, pod, remote_pod, xcom_result=None, context=None) -> None:
        """The provider's cleanup (events, pod deletion), with its generic failure replaced by the reason:
        retried when a retry can fix it (unschedulable, evicted, preempted, a trainer that exited with
        mlops.failures' transient code), failed at once otherwise.
        The reason and the trainer's last lines are read first: the provider deletes the pod."""
        from airflow.providers.cncf.kubernetes.utils.container import container_is_succeeded
        from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

        self._remember_usage(remote_pod)
        failure = None
        if remote_pod is not None and not self._killed and not container_is_succeeded(remote_pod,
                                                                                      self.base_container_name):
            failure = self._classify(pod, remote_pod)
        try:
            super().cleanup(pod, remote_pod, xcom_result=xcom_result, context=context)
        except AirflowSkipException:
            raise
        except AirflowException as exc:
            failure = failure or self._classify(pod, remote_pod)
            self.log.error("training pod failed (%s): %s", failure.reason, failure.message)
            if failure.retryable:
                raise AirflowException(failure.message) from exc
            raise AirflowFailException(failure.message) from exc

    def _classify(self, pod, remote_pod):
        from kubernetes.client import ApiClient

        from mlops.podfailure import classify

        pool = (remote_pod.metadata.labels or {}).get("mlops.airflow/pool", self.spec.compute.pool)
        status = ApiClient().sanitize_for_serialization(remote_pod)
        failure = classify(status, pool=pool, container=self.base_container_name)
        if failure.reason != "exit_code":
            return failure
        try:  # only a crash needs the trainer's last words
            logs = self.pod_manager.read_pod_logs(pod, self.base_container_name, tail_lines=20)
            tail = [line.decode(errors="replace").rstrip() if isinstance(line, bytes) else str(line).rstrip()
                    for line in logs]
        except Exception:  # noqa: BLE001 - the pod may be gone; the status still tells the reason
            self.log.warning("could not read the pod's last log lines", exc_info=True)
            return failure
        return classify(status, pool=pool, container=self.base_container_name, log_tail=tail)


class KubernetesTrainOperator(_TrainingPodMixin, KubernetesPodOperator):
    ui_color = "#e0ecff"
    operator_extra_links = (*KubernetesPodOperator.operator_extra_links, *TRAIN_LINKS)

    def __init__(self, *, spec: ModelSpec, catalogue: Catalogue, cluster: ClusterSettings | None = None,
                 validate_task_id: str = "validate_data", chosen_task_id: str | None = None, **kwargs):
        cluster = cluster or ClusterSettings.from_env()
        kwargs.setdefault("retries", spec.compute.retries)  # the last retry picks the fallback pool
        super().__init__(**{**pod_arguments(spec, catalogue, "kubernetes", cluster),
                            "kubernetes_conn_id": cluster.kubernetes_conn_id, **kwargs})
        self.spec, self.catalogue, self.backend, self.cluster = spec, catalogue, "kubernetes", cluster
        self.validate_task_id = validate_task_id
        self.chosen_task_id = chosen_task_id  # a sweep's select_best: its parameters instead of the form's
