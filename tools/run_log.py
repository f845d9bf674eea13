"""One line per DAG run on the console, the run's full output in its own log file.

Airflow, MLflow and GX write to the process's stdout and stderr (and so do the training subprocesses the
tasks start), so the capture is at the file-descriptor level: while a run goes, descriptors 1 and 2 point at
its log file, and the console gets back only the line that says how the run went.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

TAIL_LINES = 25  # of a failed run's log, shown on the console


@contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send everything this process and its children write to stdout and stderr to `path` (appended)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    streams = sys.stdout, sys.stderr
    try:
        with open(path, "ab") as log, open(log.fileno(), "w", buffering=1, closefd=False) as text:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            # Where sys.stdout is not descriptor 1 (a stream put in its place) it is swapped too; where it is,
            # it stays, as logging handlers made during the run keep what they were given.
            if not (_on_fd(sys.stdout, 1) and _on_fd(sys.stderr, 2)):
                sys.stdout = sys.stderr = text
            try:
                yield
            finally:
                text.flush()
                sys.stdout, sys.stderr = streams
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        os.close(saved[0])
        os.close(saved[1])


def _on_fd(stream, fd: int) -> bool:
    try:
        return stream.fileno() == fd
    except (AttributeError, OSError, ValueError):
        return False


class RunLog:
    """Runs one DAG run after another, printing `[k/N] model dag_id label: state in 1.2s` for each.

    Without verbose, each run's output goes to its own file under log_dir; with verbose, it streams to the
    console as it comes (the run's line follows it)."""

    def __init__(self, total: int, log_dir: Path, verbose: bool, model_width: int = 0):
        self.total, self.log_dir, self.verbose, self.model_width = total, log_dir, verbose, model_width
        self.done = 0
        if not verbose:
            log_dir.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def setup(self, name: str = "setup") -> Iterator[None]:
        """Output that belongs to no run (loading the DAGs) goes to its own file."""
        if self.verbose:
            yield
            return
        with output_to(self.log_dir / f"{name}.log"):
            yield

    def run(self, model: str, dag_id: str, label: str, start: Callable[[], str]) -> tuple[str, float]:
        """Call start() (which runs the DAG run and returns its state); returns (state, seconds)."""
        self.done += 1
        width = len(str(self.total))
        head = f"[{self.done:>{width}}/{self.total}] {model:<{self.model_width}} {dag_id} {label}: "
        path = self.log_dir / f"{self.done:0{width}d}-{dag_id}-{_safe(label)}.log"
        if not self.verbose:
            print(head, end="", flush=True)  # a terminal shows which run is going while it goes
        started = time.perf_counter()
        try:
            if self.verbose:
                state = start()
            else:
                with output_to(path):
                    state = start()
        except BaseException as exc:  # the line ends, and says where the traceback is, before it propagates
            self._report(head, f"error ({type(exc).__name__})", time.perf_counter() - started, path)
            raise
        seconds = time.perf_counter() - started
        self._report(head, state, seconds, path)
        return state, seconds

    def _report(self, head: str, state: str, seconds: float, path: Path) -> None:
        print(("" if not self.verbose else head) + f"{state} in {seconds:.1f}s", flush=True)
        if state != "success" and not state.startswith("not started") and not self.verbose:
            print(_tail(path), flush=True)


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label)


def _tail(path: Path) -> str:
    lines = path.read_text(errors="replace").splitlines()[-TAIL_LINES:]
    return "\n".join([f"    last {len(lines)} lines of {path}:"] + [f"    | {line}" for line in lines])
