"""Whether a failure is worth a retry, decided once for every backend.

`classify(exc)` says whether an exception is permanent (the same inputs fail the same way: the author's
code, a hyperparameter the library rejects, the spec, the data, data that changed after validation, the
tracking server refusing the request) or transient (the network, a tracking server or bucket briefly down
or overloaded, a lock held by another run), with a one-line reason. An exception that is neither known to
be permanent nor known to be transient is retried: retries are bounded by `compute.retries`.

The trainer process (`python -m mlops.train`, the same command locally and in a pod) reports the verdict
in its exit code and in one last log line:

    exit code 65 (PERMANENT_EXIT_CODE, sysexits' EX_DATAERR)  a retry cannot fix it: fail the task
    exit code 75 (TRANSIENT_EXIT_CODE, sysexits' EX_TEMPFAIL) a retry may fix it: retry the task
    any other non-zero code                                   killed or crashed before it could say: retry
    MLOPS_FAILURE permanent authoring: trainers.churn:train raised InvalidParameterError: ...

The local operator and the pod failure classification (podfailure.py) read the exit code, so both
backends retry the same failures. No imports beyond the standard library: exceptions of MLflow, requests,
Google and the platform are recognised by their class names.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass

PERMANENT_EXIT_CODE = 65
TRANSIENT_EXIT_CODE = 75
LINE_PREFIX = "MLOPS_FAILURE"
# Kubernetes shows this file's content as the terminated container's message (terminationMessagePath).
TERMINATION_LOG_ENV = "MLOPS_TERMINATION_LOG"
_MAX_REASON = 800
_LINE = re.compile(rf"{LINE_PREFIX} (permanent|transient) (\w+): (.*)$")

# The platform's own errors that a retry cannot fix (module, class name).
_PERMANENT_CLASSES = {
    ("mlops.authoring", "AuthoringError"): "authoring",
    ("mlops.spec.errors", "SpecError"): "spec",
    ("mlops.compute", "CatalogueError"): "spec",
    ("mlops.run_request", "RunRequestError"): "request",
    ("mlops.data", "DataError"): "data",
    ("mlops.trainer_run", "DataChangedError"): "data_changed",
    ("mlops.tuning.trial", "ObjectiveError"): "objective",
    ("mlops.validation", "ValidationFailed"): "validation",
    ("mlops.policy", "PolicyError"): "policy",
    ("requests.exceptions", "SSLError"): "tls",  # a certificate or TLS setting; a ConnectionError to requests
}
_TRANSIENT_CLASSES = {
    ("mlops.locks", "LockTimeout"): "busy",
    ("requests.exceptions", "ConnectionError"): "network",
    ("requests.exceptions", "Timeout"): "network",
    ("requests.exceptions", "RetryError"): "server_unavailable",  # the server kept answering 429 or 5xx
    ("requests.exceptions", "ChunkedEncodingError"): "network",
    ("urllib3.exceptions", "ProtocolError"): "network",
    ("urllib3.exceptions", "NewConnectionError"): "network",
    ("urllib3.exceptions", "MaxRetryError"): "network",
    ("urllib3.exceptions", "TimeoutError"): "network",
    ("sqlalchemy.exc", "OperationalError"): "database",  # a database connection lost or locked
}
# Deterministic errors of Python itself: the same code on the same input raises them again.
_PERMANENT_BUILTINS = (ValueError, TypeError, LookupError, AttributeError, NameError, ImportError, ArithmeticError,
                       AssertionError, NotImplementedError)
_TRANSIENT_HTTP = {408, 429, 500, 502, 503, 504}
_WRAPPERS = {"authoring", "data"}


@dataclass(frozen=True)
class Failure:
    permanent: bool
    kind: str  # what failed, e.g. authoring, data, tracking_unavailable, network; see classify
    reason: str  # one line

    @property
    def retryable(self) -> bool:
        return not self.permanent

    @property
    def exit_code(self) -> int:
        return PERMANENT_EXIT_CODE if self.permanent else TRANSIENT_EXIT_CODE

    @property
    def verdict(self) -> str:
        if self.permanent:
            return "Not retried: a retry cannot fix this; fix the cause, then clear the task"
        return "Retried while tries are left: this is usually temporary"

    def line(self) -> str:
        """The trainer's last log line."""
        return f"{LINE_PREFIX} {'permanent' if self.permanent else 'transient'} {self.kind}: {self.reason}"


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and what caused it (`raise ... from`) or was being handled, as Python prints them."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < 20 and all(current is not s for s in seen):
        seen.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return seen


def _class_names(exc: BaseException) -> set[tuple[str, str]]:
    return {(c.__module__, c.__name__) for c in type(exc).__mro__}


def _http_status(exc: BaseException) -> int | None:
    get_status = getattr(exc, "get_http_status_code", None)  # MlflowException
    if get_status is None:
        return None
    try:
        return int(get_status())
    except (AttributeError, TypeError, ValueError):
        return None


def _mlflow_kind(exc: BaseException) -> tuple[bool, str] | None:
    """MLflow's verdict: from the server's answer (RestException) or the HTTP status MLflow saw."""
    names = _class_names(exc)
    if ("mlflow.exceptions", "MlflowException") not in names:
        return None
    status = _http_status(exc)
    if status in (401, 403):
        return True, "tracking_refused"
    if status in (429, 502, 503, 504):
        return False, "tracking_unavailable"
    if ("mlflow.exceptions", "RestException") in names and status is not None:
        # The server answered: its own errors (5xx) may pass; a rejected request (4xx) is rejected again.
        return (False, "tracking_unavailable") if status >= 500 else (True, "tracking_rejected")
    return None  # raised by the client itself (INTERNAL_ERROR by default): what caused it decides


def _verdict(exc: BaseException) -> tuple[bool, str] | None:
    """(permanent, kind) for one exception of the chain, or None when it does not decide."""
    names = _class_names(exc)
    for table, permanent in ((_PERMANENT_CLASSES, True), (_TRANSIENT_CLASSES, False)):
        for name, kind in table.items():
            if name in names:
                return permanent, kind
    mlflow = _mlflow_kind(exc)
    if mlflow is not None:
        return mlflow
    if any(module.startswith(("google.api_core", "gcsfs")) for module, _ in names) and \
            getattr(exc, "code", None) in _TRANSIENT_HTTP:
        return False, "storage_unavailable"
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return False, "network"
    if isinstance(exc, MemoryError):
        return True, "out_of_memory"
    if isinstance(exc, _PERMANENT_BUILTINS):
        return True, "bad_input"
    return None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    line = f"{type(exc).__name__}: {text}"
    return line if len(line) <= _MAX_REASON else line[:_MAX_REASON - 3] + "..."


def classify(exc: BaseException) -> Failure:
    """Permanent or transient, with the outermost exception's message as the reason.

    The first exception of the chain that decides does, with one exception: the platform's wrappers of
    someone else's error (AuthoringError around the author's code, DataError around a read) pass the
    decision to what they wrap when that is transient, e.g. an author's code that hit a connection reset."""
    verdicts = [v for v in (_verdict(e) for e in _chain(exc)) if v is not None]
    inner = next((v for v in verdicts if v[1] not in _WRAPPERS), None)
    if inner is not None and not inner[0]:
        permanent, kind = inner
    else:
        permanent, kind = verdicts[0] if verdicts else (False, "unknown")
    return Failure(permanent, kind, _one_line(exc))


def from_exit_code(code: int | None, log_lines: list[str] | None = None) -> Failure | None:
    """What a trainer's exit code means; the reason from its MLOPS_FAILURE line when the log has one.
    None for success."""
    if code in (None, 0):
        return None
    reported = parse_line(log_lines or [])
    if code in (PERMANENT_EXIT_CODE, TRANSIENT_EXIT_CODE):
        permanent = code == PERMANENT_EXIT_CODE
        if reported is not None and reported.permanent == permanent:
            return reported
        return Failure(permanent, "trainer", f"the trainer reported a {'permanent' if permanent else 'transient'} "
                                             "failure (its reason is in the lines above)")
    if code < 0 or code > 128:
        signal = -code if code < 0 else code - 128
        return Failure(False, "killed", f"the trainer was killed by signal {signal} (exit code {code})")
    return Failure(False, "unknown", f"the trainer exited with code {code} before it could classify its failure")


def parse_line(lines: list[str]) -> Failure | None:
    """The last MLOPS_FAILURE line among `lines` (log prefixes before it are allowed)."""
    for line in reversed(lines):
        match = _LINE.search(line.rstrip())
        if match:
            return Failure(match[1] == "permanent", match[2], match[3])
    return None


def report(failure: Failure) -> None:
    """Prints the MLOPS_FAILURE line, and in a pod writes the reason where Kubernetes shows it.
    On stderr, after the traceback logged there: a log collector merges stdout and stderr in no fixed
    order, so only the same stream keeps the line last, where the operator reads the log's tail."""
    print(failure.line(), file=sys.stderr, flush=True)
    from mlops.settings import get_settings

    termination_log = get_settings().trainer.termination_log
    if termination_log.is_file() and os.access(termination_log, os.W_OK):
        termination_log.write_text(failure.line()[:4000])  # the kubelet keeps at most 4096 bytes
