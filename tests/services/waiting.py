"""Polling the deployment's REST API until runs finish."""

from __future__ import annotations

import time

TERMINAL = {"success", "failed"}


def wait_for_run(api, dag_id: str, run_id: str, timeout: float = 300, poll: float = 2.0,
                 on_poll=None) -> dict:
    """The run once it is success or failed; `on_poll(run)` is called on every poll."""
    deadline = time.time() + timeout
    while True:
        run = api.run(dag_id, run_id)
        if on_poll is not None:
            on_poll(run)
        if run["state"] in TERMINAL:
            return run
        if time.time() > deadline:
            raise AssertionError(f"{dag_id} {run_id} still {run['state']} after {timeout}s\n"
                                 + api.failure_report(dag_id, run_id))
        time.sleep(poll)


def wait_for(condition, timeout: float, poll: float = 2.0, what: str = "condition"):
    """condition() until it returns something truthy; that value."""
    deadline = time.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)
