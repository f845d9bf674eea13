from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from mlops.spec import ModelSpec
from mlops_airflow.hooks.mlflow import with_mlflow_connection
from mlops_airflow.lineage import LineageMixin, training_notes
from mlops_airflow.links import TRAIN_LINKS

# What a process needs to start at all, and the credentials a pod gets from its Secret and workload
# identity; everything else comes from trainer_environment, as in a pod.
_PROCESS_BASICS = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR", "MLOPS_PROJECT_ROOT",
                   "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES",  # a workstation's GPU, for local training
                   "MLOPS_GIT_SHA", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT",
                   # where gs:// is served (a GCS emulator in tests) and gcsfs's bucket-type probing; no secrets
                   "STORAGE_EMULATOR_HOST", "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT")


class LocalTrainOperator(LineageMixin, BaseOperator):
    """Runs `python -m mlops.train` as a subprocess with the arguments and environment a pod would get,
    streams its log, and returns the trainer's JSON result."""

    ui_color = "#e8eef8"
    operator_extra_links = TRAIN_LINKS

    def __init__(self, *, spec: ModelSpec, validate_task_id: str = "validate_data", chosen_task_id: str | None = None,
                 **kwargs):
        kwargs.setdefault("retries", spec.compute.retries)
        super().__init__(**kwargs)
        self.spec = spec
        self.validate_task_id = validate_task_id
        self.chosen_task_id = chosen_task_id  # a sweep's select_best: its parameters instead of the form's
        self._proc: subprocess.Popen | None = None
        self.tracking = None  # the MlflowHook's TrackingTarget while execute runs

    @with_mlflow_connection
    def execute(self, context):
        from mlops.settings import get_settings
        from mlops.train import build_arguments
        from mlops_airflow.runtime import record_training_cost, training_request

        settings = get_settings()
        upstream = context["ti"].xcom_pull(task_ids=self.validate_task_id) or {}
        ctx, overrides = training_request(context, self.spec, upstream, self.chosen_task_id)
        with tempfile.TemporaryDirectory(prefix="mlops-train-") as tmp:
            result_path = Path(tmp) / "return.json"
            args = build_arguments(self.spec, ctx, overrides, str(result_path))
            env = self.trainer_env(settings)
            started = time.monotonic()
            self._run([sys.executable, "-m", "mlops.train", *args], env)
            seconds = time.monotonic() - started
            result = json.loads(result_path.read_text())
        self.log.info("%s: %s", "cache hit, reused" if result["cache_hit"] else "trained", result["model_uri"])
        # Local training runs on the machine it is given; the spec's pool prices it (a GPU workstation counts
        # like a node of its pool).
        result = record_training_cost(self.spec, context, result, seconds)
        self.note_lineage(**training_notes(upstream, result))
        return result

    def trainer_env(self, settings) -> dict[str, str]:
        """The trainer process's environment: what a process needs to start, then what a pod would get."""
        from mlops.train import trainer_environment

        env = {k: os.environ[k] for k in _PROCESS_BASICS if k in os.environ}
        env.update(trainer_environment(settings))
        if self.tracking is not None:  # the MlflowHook's server and credentials, given explicitly
            env.update(self.tracking.environment)
        env.setdefault("MLOPS_PROJECT_ROOT", str(settings.project_root))
        return env

    def _run(self, cmd: list[str], env: dict[str, str]) -> None:
        tail: collections.deque[str] = collections.deque(maxlen=25)
        self._proc = proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                             text=True, start_new_session=True)
        stdout = proc.stdout
        if stdout is None:  # stdout=PIPE always gives one
            raise RuntimeError(f"{self.spec.name}: the trainer process has no stdout pipe to stream")

        def stream() -> None:  # on a thread, so the deadline below holds even if the trainer goes quiet
            for line in stdout:
                tail.append(line.rstrip())
                self.log.info("%s", line.rstrip())

        reader = threading.Thread(target=stream, daemon=True)
        reader.start()
        try:
            code = proc.wait(timeout=self.spec.compute.timeout_minutes * 60)
        except subprocess.TimeoutExpired:
            self.on_kill()
            # from None: TimeoutExpired would only repeat the timeout this message already gives
            raise AirflowException(f"{self.spec.name}: training exceeded compute.timeout_minutes="
                                   f"{self.spec.compute.timeout_minutes}; raise it in the spec or shrink the window"
                                   ) from None
        reader.join(timeout=10)
        if code != 0:
            raise self._failure(code, list(tail))

    def _failure(self, code: int, tail: list[str]) -> AirflowException:
        """The trainer's own verdict (mlops.failures, the same the pod's exit code gets): retried only
        when a retry can help."""
        from mlops.failures import from_exit_code

        failure = from_exit_code(code, tail)
        if failure is None:  # only called for a non-zero exit code, which always has a verdict
            raise ValueError(f"{self.spec.name}: exit code {code} is not a failure")
        message = (f"{self.spec.name}: the trainer exited with code {code} ({failure.kind}): {failure.reason}. "
                   f"{failure.verdict}.\nLast lines:\n" + "\n".join(tail))
        return AirflowFailException(message) if failure.permanent else AirflowException(message)

    def on_kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
