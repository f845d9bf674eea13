"""The tasks of a sweep (`<model>__tune`): check the request and the study storage, then per round ask
(`plan_<k>`), run the trials (`trials_<k>`, mapped, one task per trial), tell what their tasks could not
(`tell_<k>`), and finally choose the best trial (`select_best`), whose parameters the normal train, evaluate
and promote tasks then use.

Rounds the budget does not need are skipped, not run: a plan with nothing to ask skips itself, and the skip
runs down the remaining rounds. Trials report to the study themselves (from the Airflow side: the trainer
needs no database access); a trial task killed before it could is failed in the study by its round's tell.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from mlops.spec import ModelSpec
from mlops_airflow.hooks.mlflow import with_mlflow_connection
from mlops_airflow.operators.train_local import LocalTrainOperator

CHECK, SELECT_BEST = "check_request", "select_best"
TRIAL_LABEL = "trial_label"  # the context key map_index_template reads


def plan_id(round_no: int) -> str:
    return f"plan_{round_no}"


def trials_id(round_no: int) -> str:
    return f"trials_{round_no}"


def tell_id(round_no: int) -> str:
    return f"tell_{round_no}"


def _storage():
    from mlops_airflow.hooks.tuning import StudyStorageHook

    return StudyStorageHook().get_conn()


def _sweep(context):
    from mlops.tuning.study import Sweep

    data = context["ti"].xcom_pull(task_ids=plan_id(1), key="sweep")
    if not data:
        raise AirflowFailException("the sweep was not opened (plan_1 has no result); clear plan_1 to open it")
    return Sweep.from_dict(data)


class CheckTuningRequestOperator(BaseOperator):
    """The sweep's first task: the form's rules across fields, the conf's keys, the trainer's references and a
    study storage that can be reached, each problem with its fix, before any data is read or trial trained."""

    ui_color = "#f0f0f0"

    def __init__(self, *, spec: ModelSpec, **kwargs):
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        self.spec = spec

    def execute(self, context):
        from mlops.run_request import RunRequestError, tuning_request
        from mlops.tuning.storage import StudyStorageError
        from mlops_airflow.runtime import trigger_conf

        try:
            request = tuning_request(self.spec, dict(context["params"]), conf=trigger_conf(context))
        except RunRequestError as exc:
            raise AirflowFailException(str(exc)) from None
        try:
            _storage()
        except StudyStorageError as exc:
            raise AirflowFailException(f"{self.spec.name}: {exc}") from None
        self.log.info("sweep: %(trials)s trials, %(parallel_trials)s at once, sampler %(sampler)s, time budget "
                      "%(time_budget_minutes)s min", request)
        return request


class PlanTrialsOperator(BaseOperator):
    """Round k's asks: the first round also names the study (data, spec, code, search space) and opens the
    sweep's MLflow run. Skips itself (and with it the rest of the sweep's rounds) once the budget is spent."""

    ui_color = "#f4ecf7"

    def __init__(self, *, spec: ModelSpec, round_no: int, validate_task_id: str = "validate_data", **kwargs):
        kwargs.setdefault("retries", 1)
        super().__init__(**kwargs)
        self.spec, self.round_no, self.validate_task_id = spec, round_no, validate_task_id

    @with_mlflow_connection
    def execute(self, context):
        from mlops.tuning import study as studies

        sweep = self._open(context) if self.round_no == 1 else _sweep(context)
        used = sweep.minutes_used()
        if used >= sweep.time_budget_minutes:
            raise AirflowSkipException(f"the time budget of {sweep.time_budget_minutes} min is spent ({used:.1f} min "
                                       "used); no more rounds")
        study = studies.load_study(_storage(), self.spec, sweep)
        asked = studies.ask(study, self.spec, sweep, self.round_no, sweep.parallelism)
        done = len(studies.finished(study))
        if not asked:
            raise AirflowSkipException(f"study {sweep.study} has {done} finished trial(s) of {sweep.trials}: "
                                       "nothing left to ask")
        self.log.info("round %d of study %s: %d finished so far, asking %d: %s", self.round_no, sweep.study, done,
                      len(asked), "; ".join(t["label"] for t in asked))
        return [{**t, "study": sweep.study, "parent_run_id": sweep.parent_run_id} for t in asked]

    def _open(self, context):
        from dataclasses import replace

        from mlops.settings import get_settings
        from mlops.train import code_version
        from mlops.tuning import study as studies
        from mlops.tuning import sweep as sweeps

        ti = context["ti"]
        request = ti.xcom_pull(task_ids=CHECK) or {}
        validated = ti.xcom_pull(task_ids=self.validate_task_id) or {}
        tuning = self.spec.tuning
        sampler = request.get("sampler") or tuning.sampler
        name = studies.study_name(self.spec, validated["fingerprint"], code_version(self.spec), sampler)
        sweep = studies.new_sweep(self.spec, name, int(request.get("trials") or tuning.trials),
                                  int(request.get("parallel_trials") or tuning.parallelism),
                                  int(request.get("time_budget_minutes") or tuning.time_budget_minutes), sampler)
        sweep = replace(sweep, parent_run_id=sweeps.open_parent(get_settings(), self.spec, sweep, ti.dag_id,
                                                                ti.run_id))
        ti.xcom_push(key="sweep", value=sweep.to_dict())
        self.log.info("study %s (MLflow run %s): window %s..%s, fingerprint %s", name, sweep.parent_run_id,
                      validated.get("window_first_day"), validated.get("window_last_day"), validated["fingerprint"])
        return sweep


class TrialMixin:
    """What a trial task adds to a train task: the trial's arguments, telling its result to the study, and
    failing it there when the task fails for good or is killed."""

    spec: ModelSpec
    trial: dict[str, Any]
    log: Any
    retries: Any

    def _label(self, context) -> None:
        context[TRIAL_LABEL] = self.trial.get("label") or f"#{self.trial.get('number')}"

    def _study(self):
        from mlops.tuning.study import open_existing

        return open_existing(_storage(), self.trial["study"])

    def _skip_if_finished(self) -> None:
        from mlops.tuning.study import trial_state

        state = trial_state(self._study(), int(self.trial["number"]))
        if state != "running":
            raise AirflowSkipException(f"trial {self.trial['number']} is already {state} in study "
                                       f"{self.trial['study']}; the sweep asks another in its next round")

    def _tell(self, result: dict[str, Any]) -> None:
        from mlops.tuning.study import tell

        tell(self._study(), result)

    def _fail(self, reason: str) -> None:
        from mlops.tuning.study import fail

        try:
            fail(self._study(), int(self.trial["number"]), reason)
        except Exception:  # noqa: BLE001 - the round's tell fails it later if this could not
            self.log.warning("could not mark trial %s failed in its study", self.trial.get("number"), exc_info=True)

    def _final_failure(self, exc: BaseException, context) -> bool:
        """Whether Airflow will not retry: a permanent failure, or the last try."""
        if isinstance(exc, AirflowFailException):
            return True
        return int(context["ti"].try_number or 1) > int(self.retries or 0)

    @staticmethod
    def _slim(result: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in result.items() if k != "pruning"}


class LocalTrialOperator(TrialMixin, LocalTrainOperator):
    """One trial as a local subprocess of the training entrypoint (`python -m mlops.train --trial-json`)."""

    ui_color = "#efe8f8"

    def __init__(self, *, spec: ModelSpec, trial: dict[str, Any], **kwargs):
        super().__init__(spec=spec, **kwargs)
        self.trial = trial

    @with_mlflow_connection
    def execute(self, context):
        import sys
        import time

        from mlops.settings import get_settings
        from mlops.train import build_arguments
        from mlops_airflow.runtime import run_context

        self._label(context)
        self._skip_if_finished()
        settings = get_settings()
        upstream = context["ti"].xcom_pull(task_ids=self.validate_task_id) or {}
        try:
            with tempfile.TemporaryDirectory(prefix="mlops-trial-") as tmp:
                result_path = Path(tmp) / "return.json"
                args = build_arguments(self.spec, run_context(context, upstream), {}, str(result_path))
                env = self.trainer_env(settings)
                started = time.monotonic()
                argv = [*args, "--trial-json", json.dumps(self.trial)]
                if settings.tuning.warm_runner:
                    self._run_warm(argv, env, settings)
                else:
                    self._run([sys.executable, "-m", "mlops.train", *argv], env)
                result = json.loads(result_path.read_text())
                result["task_seconds"] = round(time.monotonic() - started, 3)
        except (AirflowException, OSError, ValueError) as exc:
            if self._final_failure(exc, context):
                self._fail(f"{type(exc).__name__}: {str(exc)[:1500]}")
            raise
        self._tell(result)
        self.log.info("trial %s %s: %s", self.trial["number"], result["state"], result["value"])
        return self._slim(result)

    def _run_warm(self, argv: list[str], env: dict[str, str], settings) -> None:
        """The trial in a fork of the machine's warm runner (mlops.tuning.runner): the same entrypoint and
        environment as the subprocess, without paying the libraries' import time per trial."""
        import collections
        import threading

        from mlops.tuning import runner

        preload = runner.preload_for(self.spec.trainer.function, settings.trainer_packages)
        try:
            self._warm = trial = runner.start_trial(runner.socket_path(settings.home, preload), argv, env, preload)
        except (runner.RunnerError, OSError) as exc:
            self.log.warning("the warm trial runner is not available (%s); running the trial as a subprocess", exc)
            import sys

            self._run([sys.executable, "-m", "mlops.train", *argv], env)
            return
        tail: collections.deque[str] = collections.deque(maxlen=25)

        def stream() -> None:
            for line in trial.lines():
                tail.append(line.rstrip())
                self.log.info("%s", line.rstrip())

        reader = threading.Thread(target=stream, daemon=True)
        reader.start()
        reader.join(timeout=self.spec.compute.timeout_minutes * 60)
        if reader.is_alive():
            trial.kill()
            raise AirflowException(f"{self.spec.name}: the trial exceeded compute.timeout_minutes="
                                   f"{self.spec.compute.timeout_minutes}; raise it in the spec")
        code = trial.wait()
        if code == -1:
            raise AirflowException(f"{self.spec.name}: the trial process {trial.pid} ended without an exit status "
                                   "(killed, or it crashed). Last lines:\n" + "\n".join(tail))
        if code != 0:
            raise self._failure(code, list(tail))

    def on_kill(self) -> None:
        warm = getattr(self, "_warm", None)
        if warm is not None:
            warm.kill()
        super().on_kill()
        self._fail("its task was killed (stopped from the UI, or timed out)")


class TellRoundOperator(BaseOperator):
    """After round k's trial tasks, whatever they ended as: fails in the study every trial of the round its task
    left running (killed before it could tell), records the round on the sweep's MLflow run, and fails the sweep
    when no trial has finished and every one of this round failed (a broken trainer; more rounds would not help)."""

    ui_color = "#f4ecf7"

    def __init__(self, *, spec: ModelSpec, round_no: int, **kwargs):
        kwargs.setdefault("retries", 1)
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.spec, self.round_no = spec, round_no

    @with_mlflow_connection
    def execute(self, context):
        from mlops.settings import get_settings
        from mlops.tuning import study as studies
        from mlops.tuning import sweep as sweeps

        asked = context["ti"].xcom_pull(task_ids=plan_id(self.round_no))
        if not asked:
            raise AirflowSkipException(f"round {self.round_no} asked no trials")
        sweep = _sweep(context)
        study = studies.load_study(_storage(), self.spec, sweep)
        numbers = {int(t["number"]) for t in asked}
        for trial in study.get_trials(deepcopy=False):
            if trial.number in numbers and not trial.state.is_finished():
                self.log.warning("trial %d: %s; failing it in the study", trial.number, studies.LOST)
                studies.fail(study, trial.number, studies.LOST)
        summary = studies.summary(study)
        sweeps.record_round(get_settings(), sweep.parent_run_id, summary, sweep)
        mine = [t for t in summary["history"] if t["number"] in numbers]
        for t in mine:
            self.log.info("trial %d: %s %s%s", t["number"], t["state"], t["value"],
                          f" ({t['failure']})" if t.get("failure") else "")
        best = summary["best"]
        self.log.info("study %s: %d of %d trials finished; best so far: %s", sweep.study, summary["finished"],
                      sweep.trials, best["label"] + f" = {best['value']:.6g}" if best else "none")
        if summary["finished"] == 0 and all(t["state"] == "fail" for t in mine):
            first = next((t["failure"] for t in mine if t.get("failure")), "see the trial tasks' logs")
            raise AirflowFailException(f"every trial of round {self.round_no} failed and none has finished: the "
                                       f"trainer does not work with these parameters. The first failure: {first}")
        return {"round": self.round_no, "finished": summary["finished"], "best": best}


class SelectBestOperator(BaseOperator):
    """The sweep's end: the best complete trial's parameters for the full-window retrain, and the sweep's MLflow
    run closed with its trial table and history plot. A sweep that stopped short of its trials (time budget,
    rounds spent on failures) still ends with the best it found, and says how to complete it."""

    ui_color = "#f4ecf7"

    def __init__(self, *, spec: ModelSpec, **kwargs):
        kwargs.setdefault("retries", 1)
        kwargs.setdefault("trigger_rule", "none_failed")
        super().__init__(**kwargs)
        self.spec = spec

    @with_mlflow_connection
    def execute(self, context):
        from mlops.settings import get_settings
        from mlops.tuning import study as studies
        from mlops.tuning import sweep as sweeps

        sweep = _sweep(context)
        study = studies.load_study(_storage(), self.spec, sweep)
        studies.reap(study)
        summary = studies.summary(study)
        complete = summary["finished"] >= sweep.trials
        sweeps.close(get_settings(), sweep.parent_run_id, summary, sweep, finished=complete)
        best = summary["best"]
        if best is None:
            raise AirflowFailException(f"study {sweep.study} has no complete trial ({summary['counts']}); see the "
                                       "trial tasks' logs")
        if not complete:
            self.log.warning("study %s has %d of %d trials (%s); continuing with the best of them. Clear this run "
                             "(or trigger a sweep on the same window) to complete it: finished trials are kept, only "
                             "the missing ones run", sweep.study, summary["finished"], sweep.trials,
                             summary["counts"])
        defaults = next((t for t in summary["history"] if t["defaults"] and t["state"] == "complete"), None)
        self.log.info("best trial %s: %s = %.6g%s", best["label"], sweep.metric, best["value"],
                      f" (the spec's defaults: {defaults['value']:.6g})" if defaults else "")
        return {"params": best["params"], "value": best["value"], "metric": sweep.metric,
                "defaults_value": defaults["value"] if defaults else None, "counts": summary["counts"],
                "sweep": {"study": sweep.study, "run_id": sweep.parent_run_id, "best_trial": str(best["number"]),
                          "best_run_id": best.get("run_id")}}
