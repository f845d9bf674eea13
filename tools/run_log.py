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
    try:
        with open(path, "ab") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        os.close(saved[0])
        os.close(saved[1])


class RunLog:
    """Runs one DAG run after another, printing `[k/N] model dag_id label: state in 1.2s` for each.

    Without verbose, each run's output goes to its own file under log_dir; with verbose, it streams to the
    console as it comes (the run's line follows it)."""

    def __init__(self, total: int, log_dir: Path, verbose: bool, model_width: int = 0):
        self.total, self.log_dir, self.verbose, self.model_width = total, log_dir, verbose, model_width
        self.done = 0
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
        if self.verbose:
            state = start()
        else:
            with output_to(path):
                state = start()
        seconds = time.perf_counter() - started
        print(("" if not self.verbose else head) + f"{state} in {seconds:.1f}s", flush=True)
        if state not in ("success",) and not state.startswith("not started") and not self.verbose:
            print(_tail(path), flush=True)
        return state, seconds


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label)


def _tail(path: Path) -> str:
    lines = path.read_text(errors="replace").splitlines()[-TAIL_LINES:]
    return "\n".join([f"    last {len(lines)} lines of {path}:"] + [f"    | {line}" for line in lines])
