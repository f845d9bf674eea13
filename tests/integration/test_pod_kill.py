"""No orphan pods when a training task is killed (marked failed or success by a user, or timed out):
the worker's `on_kill` deletes the pod, and so does the trigger's `on_kill` when the task is deferred
(Airflow 3.3's triggerer cancels the trigger and then calls it). The provider's code does the deleting;
what is tested is that the platform's operator is configured so that it happens, against the emulated
API. The training command is swapped for a long sleep so the pod is surely running when the kill comes."""

import asyncio
import sys
import threading
import time
from unittest import mock

import pytest

from helpers import load_example
from k8s_e2e import emulated_cluster, platform_pods

SLEEP = [sys.executable, "-c", "import time; time.sleep(120)"]


@pytest.fixture
def cluster(tmp_path, monkeypatch, platform):
    with emulated_cluster(tmp_path, monkeypatch, platform) as emulated:
        yield emulated


def training_operator(deferrable: bool):
    from mlops.compute import catalogue_path, load_catalogue
    from mlops.settings import get_settings
    from mlops_airflow.operators.train_kubernetes import KubernetesTrainOperator

    spec = load_example("churn")
    op = KubernetesTrainOperator(task_id="train", spec=spec, catalogue=load_catalogue(catalogue_path(
        get_settings().compute_dir)), startup_check_interval_seconds=1, poll_interval=0.2)
    op.cmds, op.arguments, op.deferrable = SLEEP, [], deferrable
    return op


def context() -> dict:
    ti = mock.MagicMock(dag_id="churn__train", task_id="train", run_id="manual__kill", map_index=-1, try_number=1)
    return {"ti": ti, "task_instance": ti, "run_id": "manual__kill", "dag": mock.MagicMock(parent_dag=None),
            "params": {}}


def wait_until_running(cluster, timeout: float = 20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        pods = platform_pods(cluster)
        if pods and pods[0].status.phase == "Running":
            return pods[0]
        time.sleep(0.1)
    raise AssertionError(f"no running training pod: {platform_pods(cluster)}")


def wait_until_gone(cluster, timeout: float = 10) -> None:
    deadline = time.time() + timeout
    while platform_pods(cluster) and time.time() < deadline:
        time.sleep(0.1)
    assert platform_pods(cluster) == []
    assert cluster.agent.runtimes == {}  # and its processes are killed, as a kubelet would


def test_killing_a_running_task_deletes_its_pod(cluster):
    op = training_operator(deferrable=False)
    outcome = {}

    def run():
        try:
            outcome["result"] = op.execute(context())
        except BaseException as exc:  # noqa: BLE001 - the test reads what the worker would see
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    pod = wait_until_running(cluster)
    deadline = time.time() + 20
    while op.pod is None and time.time() < deadline:  # the worker thread may not have stored the created pod yet
        time.sleep(0.05)
    assert op.pod is not None and op.pod.metadata.name == pod.metadata.name
    assert pod.metadata.labels["mlops.airflow/model"] == "churn"
    op.on_kill()  # what the task runner calls when the task is killed
    wait_until_gone(cluster)
    worker.join(timeout=30)
    assert not worker.is_alive() and "result" not in outcome


def test_killing_a_deferred_task_deletes_its_pod(cluster):
    from airflow.sdk.exceptions import TaskDeferred

    op = training_operator(deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context())
    trigger = deferred.value.trigger

    async def kill_while_waiting():
        async def watch():
            async for event in trigger.run():
                return event
        task = asyncio.create_task(watch())
        await asyncio.to_thread(wait_until_running, cluster)
        task.cancel("__airflow_user_action__")  # as the triggerer cancels on a user's action
        with pytest.raises(asyncio.CancelledError):
            await task
        await trigger.on_kill()

    asyncio.run(asyncio.wait_for(kill_while_waiting(), timeout=60))
    wait_until_gone(cluster)
