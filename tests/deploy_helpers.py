"""What the deploy tests of both backends share: running `churn__deploy` with `dag.test()`, a client loop
that calls an endpoint through a whole rollout, and the registry's aliases."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timezone


def deploy(served, version: str, reason: str = "test"):
    dag = served["bag"].dags["churn__deploy"]
    dr = dag.test(logical_date=datetime.now(timezone.utc), run_conf={"version": version, "reason": reason})
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as s:
        tis = s.query(TaskInstance).filter(TaskInstance.dag_id == "churn__deploy", TaskInstance.run_id == dr.run_id)
        states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in tis}
    return dr, states


class ClientLoop:
    """Requests to the stable address until stopped, as production clients send them: two clients on
    keep-alive connections and one opening a new connection per request."""

    def __init__(self, url: str, body: bytes, protocol=None):
        from mlops.serving import endpoint

        self.url, self.body, self.protocol = url, body, protocol or endpoint.MLFLOW
        self.answers: Counter[str] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(keep_alive,), daemon=True)
                         for keep_alive in (True, True, False)]

    def _run(self, keep_alive: bool) -> None:
        from mlops.serving import endpoint

        client = endpoint.session()
        while not self._stop.is_set():
            if not keep_alive:
                client.close()
                client = endpoint.session()
            answer = self.protocol.invoke(client, self.url, self.body, timeout=10)
            if answer.ok:
                self.answers[answer.version] += 1
            else:
                self.failures.append(endpoint.describe(answer))

    def __enter__(self) -> "ClientLoop":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def _status(served):
    from mlops.serving.status import model_status

    return model_status(served["settings"], served["spec"])


def _one_row(served) -> bytes:
    from mlops.serving import endpoint
    from mlops.serving.rollout import smoke_sample

    sample = smoke_sample(served["settings"], served["spec"], served["versions"]["good"])
    return endpoint.frame_body(sample[list(served["spec"].dataset.features)].head(1))


def _alias(served, alias):
    from mlops import tracking

    v = tracking.version_by_alias(served["settings"], "churn", alias)
    return str(v.version) if v is not None else None


STEPS = ["resolve_version", "start_candidate", "smoke_test", "canary_bake", "switch_traffic", "record_deployment",
         "retire_old_version"]
