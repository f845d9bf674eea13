"""Talking to a model server as any client does: MLflow's scoring protocol over HTTP
(`POST /invocations` with a `dataframe_split` body; `GET /health`), or the Open Inference Protocol (KServe's
v2: `POST /v2/models/<name>/infer`) that the KServe backend's runtime speaks. A backend names its
`protocol`; the gates build bodies and read answers through it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from mlops.serving.worker import VERSION_HEADER

if TYPE_CHECKING:
    import pandas as pd
    import requests


class NotReady(RuntimeError):
    """A server did not become ready; the message says why (crash, out of memory, probe timeout)."""


@dataclass(frozen=True)
class Answer:
    ok: bool
    status: int  # HTTP status, 0 when no answer came
    scores: list[float]
    version: str
    seconds: float
    error: str = ""


def frame_body(frame: pd.DataFrame) -> bytes:
    """The request body for `frame` (NaN as null, as JSON has no NaN)."""
    split = json.loads(frame.to_json(orient="split", index=False, date_format="iso"))
    return json.dumps({"dataframe_split": {"columns": split["columns"], "data": split["data"]}}).encode()


def session() -> requests.Session:
    import requests

    s = requests.Session()
    s.headers["Content-Type"] = "application/json"
    return s


def invoke(client: requests.Session, url: str, body: bytes, timeout: float) -> Answer:
    import requests

    start = time.perf_counter()
    try:
        response = client.post(f"{url}/invocations", data=body, timeout=timeout)
    except requests.RequestException as exc:
        return Answer(False, 0, [], "", time.perf_counter() - start, f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - start
    version = response.headers.get(VERSION_HEADER, "")
    if response.status_code != 200:
        return Answer(False, response.status_code, [], version, seconds, response.text[:500])
    try:
        predictions = response.json()["predictions"]
        scores = [float(v) for v in predictions]
    except (ValueError, KeyError, TypeError) as exc:
        return Answer(False, response.status_code, [], version, seconds, f"unreadable answer: {exc}")
    return Answer(True, 200, scores, version, seconds)


def healthy(url: str, timeout: float = 2.0) -> bool:
    import requests

    try:
        return requests.get(f"{url}/health", timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def wait_ready(url: str, timeout_s: float, why_not_alive: Callable[[], str | None], what: str) -> float:
    """Seconds until `url` answers its health check. `why_not_alive()` says why the server is gone (None while
    it runs): a server that dies fails at once with that reason, one that never answers fails at the timeout."""
    start = time.monotonic()
    while True:
        if healthy(url):
            return time.monotonic() - start
        reason = why_not_alive()
        if reason is not None:
            raise NotReady(f"{what} did not become ready: {reason}")
        if time.monotonic() - start > timeout_s:
            raise NotReady(f"{what} did not become ready: no healthy answer from {url}/health within "
                           f"{timeout_s:.0f} s (probe timeout; raise serving.timeouts.ready_seconds if loading the "
                           "model takes longer)")
        time.sleep(0.1)


def exit_reason(code: int, log_tail: list[str]) -> str:
    """Why a server process ended, for a readiness failure."""
    if code < 0 and -code == 9:
        why = "killed by SIGKILL (out of memory, most likely: the kernel's OOM killer sends it)"
    elif code < 0:
        why = f"killed by signal {-code}"
    else:
        why = f"crashed at start (exit code {code})"
    tail = "\n".join(f"  | {line}" for line in log_tail) or "  | (no output)"
    return f"{why}; the last lines of its log:\n{tail}"


def describe(answer: Any) -> str:
    return (f"HTTP {answer.status}: {answer.error}" if answer.status else answer.error) or "no answer"


class MlflowProtocol:
    """MLflow's scoring server (the local and kubernetes backends)."""

    name = "mlflow"

    @staticmethod
    def body(frame: pd.DataFrame) -> bytes:
        return frame_body(frame)

    @staticmethod
    def invoke(client: requests.Session, url: str, body: bytes, timeout: float) -> Answer:
        return invoke(client, url, body, timeout)


_V2_TYPES = {"i": "INT64", "u": "UINT64", "f": "FP64", "b": "BOOL"}


class V2Protocol:
    """The Open Inference Protocol (v2) as MLServer's MLflow runtime speaks it: one input per column, the
    request marked `content_type: pd` so the runtime hands the model a DataFrame; the answer's
    `model_version` is the version (the deploy sets the server's MLSERVER_MODEL_VERSION)."""

    name = "v2"

    def __init__(self, model: str):
        self.model = model

    def body(self, frame: pd.DataFrame) -> bytes:
        inputs = []
        for column in frame.columns:
            values = frame[column]
            datatype = _V2_TYPES.get(values.dtype.kind, "BYTES")
            split = json.loads(values.to_frame().to_json(orient="split", index=False, date_format="iso"))
            data = [row[0] for row in split["data"]]  # NaN becomes null
            if datatype == "BYTES":
                data = [None if v is None else str(v) for v in data]
            inputs.append({"name": str(column), "shape": [len(frame)], "datatype": datatype, "data": data,
                           "parameters": {"content_type": "str" if datatype == "BYTES" else "np"}})
        return json.dumps({"parameters": {"content_type": "pd"}, "inputs": inputs}).encode()

    def invoke(self, client: requests.Session, url: str, body: bytes, timeout: float) -> Answer:
        import requests

        start = time.perf_counter()
        try:
            response = client.post(f"{url}/v2/models/{self.model}/infer", data=body, timeout=timeout)
        except requests.RequestException as exc:
            return Answer(False, 0, [], "", time.perf_counter() - start, f"{type(exc).__name__}: {exc}")
        seconds = time.perf_counter() - start
        if response.status_code != 200:
            return Answer(False, response.status_code, [], "", seconds, response.text[:500])
        try:
            answer = response.json()
            scores = [float(v) for v in answer["outputs"][0]["data"]]
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            return Answer(False, response.status_code, [], "", seconds, f"unreadable answer: {exc}")
        return Answer(True, 200, scores, str(answer.get("model_version") or ""), seconds)


MLFLOW = MlflowProtocol()
