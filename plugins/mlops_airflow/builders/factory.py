"""The DAG factory: one `<model>__train` DAG per spec in include/models, and the platform's
`mlops__maintenance` DAG.

At parse time it reads the spec files and nothing else; operators import the heavy libraries when
they run. A spec that does not load becomes a DAG that shows the error and refuses to run, so a
broken file is visible in the UI and never takes the other models down with it.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, Param

from mlops.compute import Catalogue, allowed_pools, catalogue_path, effective_backend, load_catalogue
from mlops.settings import get_settings
from mlops.spec import ModelSpec, SpecError, SpecFiles, load_spec, scan_models_dir
from mlops_airflow.assets import champion_asset, retrain_asset
from mlops_airflow.builders.broken import broken_spec_dag
from mlops_airflow.builders.champion_dags import build_monitor_dag, build_score_dag
from mlops_airflow.builders.deploy_dag import build_deploy_dag
from mlops_airflow.builders.maintenance import DAG_ID as MAINTENANCE_DAG_ID
from mlops_airflow.builders.maintenance import build_maintenance_dag
from mlops_airflow.builders.rollback_dag import build_rollback_dag
from mlops_airflow.builders.train_tasks import train_task
from mlops_airflow.builders.tune_dag import build_tune_dag
from mlops_airflow.notifications import notifier as notify
from mlops_airflow.operators import (
    EvaluateModelOperator,
    PromoteModelOperator,
    ValidateDataOperator,
)
from mlops_airflow.operators.promote import APPROVE_PROMOTION
from mlops_airflow.operators.request import CheckRequestOperator
from mlops_airflow.sharding import Shard

log = logging.getLogger(__name__)
PLATFORM_TAG = "mlops"
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}
WHOLE_PLATFORM = Shard()  # the one shard of an unsharded platform (frozen, so one instance serves every call)


def _params(spec: ModelSpec, catalogue: Catalogue | None) -> dict[str, Param]:
    params = {}
    for name, default in spec.trainer.hyperparameters.items():
        # A typed field where the default tells the type; otherwise (null, list, mapping) free JSON. Typed
        # fields take null too: the UI marks a non-null type as required, and NaN or 1e400 in a conf arrive
        # as null, which check_request explains rather than Airflow failing the task on its own.
        kind = _JSON_TYPES.get(type(default))
        typing: dict[str, Any] = {"type": ["null", kind]} if kind else {}
        bounds = spec.trainer.hyperparameter_ranges.get(name)
        if bounds is not None:
            typing.update({k: v for k, v in (("minimum", bounds.min), ("maximum", bounds.max)) if v is not None})
        limits = "".join(f", {word} {value:g}" for word, value in (("at least", bounds.min), ("at most", bounds.max))
                         if value is not None) if bounds is not None else ""
        params[f"hp_{name}"] = Param(
            default, **typing, title=f"Hyperparameter: {name}",
            description=f"Override trainer.hyperparameters.{name} for this run (spec default: {default!r}{limits}).",
            section="Hyperparameters",
        )
    pools = sorted(catalogue.pools) if catalogue is not None else [spec.compute.pool]
    allowed = allowed_pools(catalogue, spec.compute.pool, spec.compute.gpus) if catalogue is not None else pools
    params["compute_pool"] = Param(
        spec.compute.pool, type="string", enum=pools, title="Compute pool",
        description=f"Node pool for this run's training pod (spec: {spec.compute.pool}). This model may use "
                    f"{', '.join(allowed)}: pools that fit its {spec.compute.gpus} GPU(s) and share its Airflow pool.",
        section="Compute",
    )
    params["force_promote"] = Param(
        False, type="boolean", title="Force promote",
        description="Promote the challenger even if it does not beat the champion or the champion has newer "
                    "data. Guardrails still apply. Needs a reason.",
        section="Promotion",
    )
    params["force_reason"] = Param(
        None, type=["null", "string"], title="Reason for forcing",
        description="Only with Force promote: written to the audit log.", section="Promotion",
    )
    return params


def _doc(spec: ModelSpec, path: Path) -> str:
    ev = spec.evaluation
    return (
        f"### {spec.name}\n{spec.description}\n\n"
        f"* owner: `{spec.owner}` · spec: `{path.name}` · hash `{spec.content_hash()}`\n"
        f"* task: {spec.dataset.task}, target `{spec.dataset.target}`, window {spec.dataset.window.days} days\n"
        f"* trainer: `{spec.trainer.function}` on `{effective_backend(spec.compute.backend)}` "
        f"(pool `{spec.compute.pool}`, {spec.compute.gpus} GPU)\n"
        f"* promotion: {ev.primary_metric} ({'max' if ev.maximize else 'min'}imize), min improvement "
        f"{ev.min_improvement}, {len(ev.guardrails)} guardrail(s)\n\n"
        "check_request -> validate_data -> train -> evaluate -> "
        + (f"approve_promotion ({spec.promotion.approval.who()}, Required actions) -> "
           if spec.promotion.approval is not None else "")
        + "promote. Runs on the schedule and when the monitor "
        "asks for retraining (then on the newest complete window). Trigger with a logical date to train on the window "
        "before it, or without one to train on the newest data."
    )


def _training_schedule(spec: ModelSpec):
    """The spec's schedule or a retraining request from the monitor, whichever comes first."""
    if spec.schedule is None:
        return [retrain_asset(spec)]
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(spec.schedule, timezone="UTC"),
                               assets=[retrain_asset(spec)])


def build_training_dag(spec: ModelSpec, path: Path, catalogue: Catalogue | None = None) -> DAG:
    retries = spec.compute.retries
    backend = effective_backend(spec.compute.backend)
    with DAG(
        dag_id=spec.dag_id,
        description=spec.description[:200] or f"Train and promote {spec.name}",
        schedule=_training_schedule(spec),
        start_date=spec.start_datetime,
        catchup=False,
        max_active_runs=1,
        doc_md=_doc(spec, path),
        tags=[PLATFORM_TAG, "training", f"compute:{backend}", *spec.tags],
        params=_params(spec, catalogue),
        default_args={"owner": spec.owner, "retries": retries,
                      "retry_delay": timedelta(seconds=spec.compute.retry_delay_seconds)},
        # Registered through build_dags' return value only: a DAG whose construction failed half-way
        # must not be picked up in place of the broken-spec DAG that reports the failure.
        auto_register=False,
    ) as dag:
        validate = ValidateDataOperator(task_id="validate_data", spec=spec,
                                        on_failure_callback=notify.callbacks(spec, "validation_failed"))
        train = train_task(spec, catalogue, backend)
        evaluate = EvaluateModelOperator(task_id="evaluate", spec=spec)
        promote = PromoteModelOperator(task_id="promote", spec=spec, outlets=[champion_asset(spec)],
                                       on_success_callback=notify.callbacks(spec, "promoted"))
        check = CheckRequestOperator(task_id="check_request", spec=spec, catalogue=catalogue)
        check >> validate >> train >> evaluate
        if spec.promotion.approval is None:
            evaluate >> promote
        else:
            # Imported only for the specs that ask: the provider's HITL module is not free to import.
            from mlops_airflow.operators.approval import PromotionApprovalOperator

            evaluate >> PromotionApprovalOperator(task_id=APPROVE_PROMOTION, spec=spec) >> promote
    return dag


_COMPANIONS = {"score": build_score_dag, "monitor": build_monitor_dag, "rollback": build_rollback_dag,
               "deploy": build_deploy_dag}  # deploy: only for a spec with a serving section
KINDS = ("train", "tune", *_COMPANIONS)  # tune: only for a spec with a tuning section


def _model_dags(path: Path, expectations_dir: Path, catalogue: Catalogue,
                kinds=KINDS) -> tuple[list[DAG], ModelSpec | None]:
    """The DAGs of one spec file (those of `kinds`), or the broken-spec DAG that reports why there are none."""
    try:
        spec = load_spec(path, expectations_dir, catalogue)
        # The DAG validates its params: it always has a schedule.
        built = [build_training_dag(spec, path, catalogue)] if "train" in kinds else []
        tune = build_tune_dag(spec, path, catalogue) if "tune" in kinds else None
        built += [tune] if tune is not None else []
        companions = [_COMPANIONS[kind](spec, spec.tags) for kind in kinds if kind in _COMPANIONS]
        built += [dag for dag in companions if dag is not None]
        return built, spec
    except SpecError as exc:
        log.error("%s", exc)
        return [broken_spec_dag(path, str(exc))], None
    except Exception as exc:  # noqa: BLE001 - one model's problem must not hide the other models
        log.exception("building the DAG of %s failed", path)
        problem = f"{path}: the DAG could not be built: {type(exc).__name__}: {exc}"
        return [broken_spec_dag(path, problem)], None


def _other_specs(models: dict[str, Path], expectations_dir: Path, catalogue: Catalogue) -> list[ModelSpec]:
    """The specs that load, of models another shard builds: the maintenance DAG serves them too."""
    specs = []
    for path in models.values():
        try:
            specs.append(load_spec(path, expectations_dir, catalogue))
        except Exception:  # noqa: BLE001 - their own shard reports the problem
            continue
    return specs


def _requested(dag_id: str | None, files: SpecFiles, shard: Shard) -> tuple[dict[str, Path], tuple, bool, bool] | None:
    """What a worker about to run a task of `dag_id` needs built: (models, kinds, the files that define no
    model, the maintenance DAG); None for everything (the dag-processor, tests, or an id this shard does not
    know by its name)."""
    if dag_id is None:
        return None
    if dag_id == MAINTENANCE_DAG_ID:
        return ({}, (), False, True) if shard.home else None
    model, _, kind = dag_id.rpartition("__")
    if kind in KINDS and model in files.models:
        if shard.builds(model) and not shard.orphaned(model):
            return {model: files.models[model]}, (kind,), False, False
        return None
    if dag_id.startswith("broken_spec__"):  # broken.broken_dag_id of a file that defines no model
        return ({}, (), True, False) if shard.home else None
    return None


def build_dags(models_dir: Path | None = None, expectations_dir: Path | None = None, *,
               shard: Shard = WHOLE_PLATFORM, dag_id: str | None = None) -> dict[str, DAG]:
    """Every DAG of `shard` (the whole platform by default), or, given the `dag_id` a worker is about to run
    (Airflow's parsing context), only that DAG, reading only its model's spec."""
    settings = get_settings()
    models_dir = Path(models_dir or settings.models_dir)
    expectations_dir = Path(expectations_dir or settings.expectations_dir)
    # A broken catalogue is the platform's error, not a model's: it fails the import, visibly, naming the field.
    catalogue = load_catalogue(catalogue_path(settings.compute_dir))
    effective_backend("local")  # a bad MLOPS_COMPUTE_BACKEND fails here too, once
    files = scan_models_dir(models_dir)
    request = _requested(dag_id, files, shard)
    if request is not None:
        dags = _build(files, shard, expectations_dir, catalogue, *request)
        if dag_id in dags:
            return {dag_id: dags[dag_id]}
        # Not where its name says (a spec broken since the run started): build all, as the processor does.
    return _build(files, shard, expectations_dir, catalogue, None, KINDS, shard.home, shard.home)


def _build(files: SpecFiles, shard: Shard, expectations_dir: Path, catalogue: Catalogue,
           models: dict[str, Path] | None, kinds: tuple, with_rejected: bool, with_maintenance: bool) -> dict[str, DAG]:
    """The DAGs of `models` (None: every model of the shard), the files that define no model and the
    maintenance DAG, each only when asked."""
    if models is None:
        models = {name: path for name, path in files.models.items() if shard.builds(name) or shard.orphaned(name)}
    dags: dict[str, DAG] = {}
    specs: list[ModelSpec] = []
    for name, path in models.items():
        if shard.orphaned(name):
            problem = shard.orphan_problem(path)
            log.error("%s", problem)
            built, spec = [broken_spec_dag(path, problem)], None
        else:
            built, spec = _model_dags(path, expectations_dir, catalogue, kinds)
        if spec is not None:
            specs.append(spec)
        taken = [d.dag_id for d in built if d.dag_id in dags]
        if taken:  # never replace a DAG that is already there: the model that has it keeps working
            log.error("%s: DAG id(s) %s are already used by another spec; give this model a unique name", path, taken)
            built = [broken_spec_dag(path, f"{path}: DAG id(s) {taken} are already used by another "
                                           "spec; give this model a unique name", owns_model=False)]
        dags.update((d.dag_id, d) for d in built)
    if with_rejected:
        for path, problem in files.rejected.items():
            log.error("%s", problem)
            broken = broken_spec_dag(path, problem, owns_model=False)
            dags.setdefault(broken.dag_id, broken)
    if with_maintenance:
        others = {name: path for name, path in files.models.items() if name not in models or shard.orphaned(name)}
        maintenance = build_maintenance_dag(specs + _other_specs(others, expectations_dir, catalogue))
        dags[maintenance.dag_id] = maintenance
    return dags
