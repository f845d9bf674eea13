"""`<model>__deploy`: rolls a version out to the model's online endpoint, through readiness, a smoke test and
a canary bake, and rolls itself back when any of them fails. Runs when the champion changes and from the
trigger form (a version, default the champion; a reason). Exists only for specs with a `serving` section."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Param

from mlops.spec import ModelSpec
from mlops_airflow.assets import champion_asset
from mlops_airflow.notifications import notifier as notify
from mlops_airflow.operators.deploy import (
    RESOLVE,
    START,
    CanaryBakeOperator,
    RecordDeploymentOperator,
    ResolveDeploymentOperator,
    RetireOldVersionOperator,
    RollBackDeploymentOperator,
    SmokeTestOperator,
    StartCandidateOperator,
    SwitchTrafficOperator,
)

APPROVE_SWITCH = "approve_switch"


def _doc(spec: ModelSpec) -> str:
    s = spec.serving
    assert s is not None
    g = s.guardrails
    gate = f"approve_switch ({s.approval.who()}) -> " if s.approval is not None else ""
    return (f"### {spec.name}: deploy\n{RESOLVE} -> {START} -> smoke_test -> canary_bake -> {gate}switch_traffic -> "
            "record_deployment -> retire_old_version; roll_back when a step fails (the stable version serves "
            f"throughout).\n\n* backend `{s.backend}`, {s.replicas} replica(s), ready within "
            f"{s.timeouts.ready_seconds} s\n* smoke: {s.smoke.rows} holdout rows within {s.smoke.tolerance:g} of "
            f"the offline scores\n* bake: {s.canary.requests} requests (at least {s.canary.minutes:g} min) of the "
            f"newest scored partition, in shadow; error rate <= {g.max_error_rate:.2%}, p99 <= {g.max_p99_ms:g} ms, "
            f"PSI <= {g.max_psi:g}" + (f", class disagreement <= {g.max_disagreement:.0%}"
                                      if spec.dataset.task == "binary_classification" else "")
            + f"\n* the serving version holds the alias `{s.deployed_alias}`: `python -m mlops.serving status`, "
            f"`python -m mlops.serving predict {spec.name}`")


def build_deploy_dag(spec: ModelSpec, tags: list[str]) -> DAG | None:
    s = spec.serving
    if s is None:
        return None
    step_timeout = timedelta(seconds=s.timeouts.ready_seconds + 300)
    bake_timeout = timedelta(minutes=s.canary.minutes + 30)
    with DAG(
        dag_id=spec.deploy_dag_id,
        description=f"Roll a version of {spec.name} out to its endpoint (default: the {spec.promotion.alias})",
        schedule=[champion_asset(spec)], start_date=spec.start_datetime, catchup=False, max_active_runs=1,
        tags=["mlops", "serving", *tags], doc_md=_doc(spec),
        params={
            "version": Param(
                None, type=["null", "string"], pattern=r"^(v?[0-9]+)?$", title="Version",
                description=f"The registered version to serve, e.g. 3. Empty: the {spec.promotion.alias}. The "
                            f"version under `{s.previous_alias}` moves the endpoint back."),
            "reason": Param(None, type=["null", "string"], maxLength=500, title="Reason",
                            description="Why: written to the rollout and audit records."),
        },
        default_args={"owner": spec.owner, "retries": 0},
        auto_register=False,
    ) as dag:
        resolve = ResolveDeploymentOperator(task_id=RESOLVE, spec=spec)
        start = StartCandidateOperator(task_id=START, spec=spec, execution_timeout=step_timeout)
        smoke = SmokeTestOperator(task_id="smoke_test", spec=spec, execution_timeout=step_timeout)
        bake = CanaryBakeOperator(task_id="canary_bake", spec=spec, execution_timeout=bake_timeout)
        switch = SwitchTrafficOperator(task_id="switch_traffic", spec=spec,
                                       execution_timeout=step_timeout * max(1, s.replicas))
        record = RecordDeploymentOperator(task_id="record_deployment", spec=spec)
        # retire is idempotent (it stops what is not this rollout's); a retry beats two versions left serving
        retire = RetireOldVersionOperator(task_id="retire_old_version", spec=spec, retries=2,
                                          retry_delay=timedelta(seconds=10),
                                          execution_timeout=timedelta(seconds=s.timeouts.drain_seconds + 300),
                                          on_success_callback=notify.callbacks(spec, "deployed"))
        roll_back = RollBackDeploymentOperator(task_id="roll_back", spec=spec, trigger_rule="one_failed",
                                               on_success_callback=notify.callbacks(spec, "deploy_rolled_back"))
        resolve >> start >> smoke >> bake
        watched: list = [start, smoke, bake, switch, record]
        if s.approval is None:
            bake >> switch
        else:
            # Imported only for the specs that ask: the provider's HITL module is not free to import.
            from mlops_airflow.operators.approval import DeploymentApprovalOperator

            approve = DeploymentApprovalOperator(task_id=APPROVE_SWITCH, spec=spec)
            bake >> approve >> switch
            watched.append(approve)
        switch >> record >> retire
        watched >> roll_back
    return dag
