"""`<model>__tune`: a hyperparameter sweep that ends like any training run.

    check_request -> validate_data -> plan_1 -> trials_1 (mapped) -> tell_1 -> plan_2 -> ... -> tell_<rounds>
        -> select_best -> train -> evaluate -> [approve_promotion] -> promote

Each round asks as many trials as run in parallel (the trigger form's `parallel_trials`), runs them as mapped
tasks in the model's pool, and tells their results before the next round asks; rounds the budget does not
need are skipped. `select_best` hands the best trial's parameters to `train`, which retrains them on the full
window: that model, not a trial's, is compared with the champion and promoted through the usual gates.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from airflow.sdk import DAG, BaseOperator, CronTriggerTimetable, Param

from mlops.compute import Catalogue, effective_backend
from mlops.spec import ModelSpec
from mlops_airflow.builders.train_tasks import train_task, trial_tasks
from mlops_airflow.notifications import notifier as notify

PLATFORM_TAG = "mlops"


def _params(spec: ModelSpec) -> dict[str, Param]:
    tuning = spec.tuning
    assert tuning is not None  # only called for specs with a tuning section
    return {
        "trials": Param(tuning.trials, type="integer", minimum=1, maximum=tuning.max_trials, title="Trials",
                        description=f"Trials this sweep should have finished (complete or pruned); at most "
                                    f"{tuning.max_trials}. A sweep triggered again on the same data continues its "
                                    "study: finished trials count.", section="Sweep"),
        "parallel_trials": Param(tuning.parallelism, type="integer", minimum=1, maximum=tuning.max_parallelism,
                                 title="Parallel trials",
                                 description=f"Trials asked and run together in each round, at most "
                                             f"{tuning.max_parallelism}; the compute pool's Airflow slots cap them "
                                             f"too. trials / parallel trials must fit in {tuning.rounds} rounds.",
                                 section="Sweep"),
        "sampler": Param(tuning.sampler, type="string", enum=["tpe", "random", "grid"], title="Sampler",
                         description="tpe: Bayesian (TPE); random; grid: every combination of discrete values. "
                                     "A different sampler is a different study.", section="Sweep"),
        "time_budget_minutes": Param(tuning.time_budget_minutes, type="integer", minimum=1,
                                     maximum=tuning.max_time_budget_minutes, title="Time budget (minutes)",
                                     description="No new round starts after this; a round under way finishes.",
                                     section="Sweep"),
    }


def _doc(spec: ModelSpec) -> str:
    tuning = spec.tuning
    assert tuning is not None
    space = "\n".join(f"  * `{name}`: {p.describe()} (spec default {spec.trainer.hyperparameters.get(name)!r})"
                      for name, p in tuning.parameters.items())
    metric = tuning.metric or spec.evaluation.primary_metric
    return (f"### {spec.name}: hyperparameter sweep\n{spec.description}\n\n"
            f"* objective: `{metric}` on a validation split ({tuning.validation_fraction:.0%} of the training part; "
            "the promotion holdout is never seen by a trial)\n"
            f"* sampler `{tuning.sampler}`, pruner `{tuning.pruner}`, {tuning.trials} trials, {tuning.parallelism} at "
            f"once, {tuning.rounds} rounds, time budget {tuning.time_budget_minutes} min\n* search space:\n{space}\n\n"
            "The best trial's parameters are retrained on the full window and go through evaluate and promote like "
            "any challenger. Stop a sweep by marking its run failed; clear the run to resume it (or trigger a sweep "
            "on the same window): finished trials are kept, only the missing ones run.")


def build_tune_dag(spec: ModelSpec, path: Path, catalogue: Catalogue | None) -> DAG | None:
    """The model's sweep DAG, or None when its spec has no tuning section."""
    from mlops_airflow.assets import champion_asset
    from mlops_airflow.operators import EvaluateModelOperator, PromoteModelOperator, ValidateDataOperator
    from mlops_airflow.operators.promote import APPROVE_PROMOTION
    from mlops_airflow.operators.tuning import (
        SELECT_BEST,
        CheckTuningRequestOperator,
        PlanTrialsOperator,
        SelectBestOperator,
        TellRoundOperator,
        plan_id,
        tell_id,
    )

    tuning = spec.tuning
    if tuning is None:
        return None
    backend = effective_backend(spec.compute.backend)
    schedule = CronTriggerTimetable(tuning.schedule, timezone="UTC") if tuning.schedule else None
    with DAG(
        dag_id=spec.tune_dag_id,
        description=f"Sweep {spec.name}'s hyperparameters, then retrain and promote the best",
        schedule=schedule,
        start_date=spec.start_datetime,
        catchup=False,
        max_active_runs=1,
        doc_md=_doc(spec),
        tags=[PLATFORM_TAG, "tuning", f"compute:{backend}", *spec.tags],
        params=_params(spec),
        default_args={"owner": spec.owner, "retries": spec.compute.retries,
                      "retry_delay": timedelta(seconds=spec.compute.retry_delay_seconds)},
        auto_register=False,
    ) as dag:
        check = CheckTuningRequestOperator(task_id="check_request", spec=spec)
        validate = ValidateDataOperator(task_id="validate_data", spec=spec,
                                        on_failure_callback=notify.callbacks(spec, "validation_failed"))
        best = SelectBestOperator(task_id=SELECT_BEST, spec=spec)
        check >> validate
        previous: BaseOperator = validate
        for k in range(1, tuning.rounds + 1):
            plan = PlanTrialsOperator(task_id=plan_id(k), spec=spec, round_no=k)
            tell = TellRoundOperator(task_id=tell_id(k), spec=spec, round_no=k)
            trials = trial_tasks(spec, catalogue, backend, k, plan.output)
            previous >> plan
            trials >> tell
            plan >> tell
            plan >> best
            tell >> best
            previous = tell
        train = train_task(spec, catalogue, backend, chosen_task_id=SELECT_BEST)
        evaluate = EvaluateModelOperator(task_id="evaluate", spec=spec)
        promote = PromoteModelOperator(task_id="promote", spec=spec, outlets=[champion_asset(spec)],
                                       on_success_callback=notify.callbacks(spec, "promoted"))
        best >> train >> evaluate
        if spec.promotion.approval is None:
            evaluate >> promote
        else:
            from mlops_airflow.operators.approval import PromotionApprovalOperator

            evaluate >> PromotionApprovalOperator(task_id=APPROVE_PROMOTION, spec=spec) >> promote
    return dag
