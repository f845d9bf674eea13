"""The demo's console: one line per DAG run, everything the run writes (its child processes too) in its file."""

import subprocess
import sys

import pytest

from tools.run_log import RunLog


def test_a_run_prints_one_line_and_its_output_goes_to_its_file(tmp_path, capfd):
    runs = RunLog(2, tmp_path, verbose=False, model_width=6)

    def noisy() -> str:
        print("airflow says a lot")
        print("a warning", file=sys.stderr)
        subprocess.run([sys.executable, "-c", "print('the trainer subprocess too')"], check=True)
        return "success"

    assert runs.run("churn", "churn__train", "2026-01-14", noisy)[0] == "success"
    out, err = capfd.readouterr()
    assert out.startswith("[1/2] churn  churn__train 2026-01-14: success in ") and out.count("\n") == 1
    assert err == ""
    log = (tmp_path / "1-churn__train-2026-01-14.log").read_text()
    assert log.splitlines() == ["airflow says a lot", "a warning", "the trainer subprocess too"]


def test_a_failed_run_shows_the_end_of_its_log(tmp_path, capfd):
    runs = RunLog(1, tmp_path, verbose=False)

    def failing() -> str:
        print("\n".join(f"line {i}" for i in range(100)))
        return "failed"

    runs.run("demand", "demand__monitor", "2026-01-18", failing)
    out, _ = capfd.readouterr()
    assert "[1/1] demand demand__monitor 2026-01-18: failed in " in out
    assert "last 25 lines of " in out and "| line 99" in out and "| line 74" not in out


def test_an_exception_ends_the_line_and_propagates(tmp_path, capfd):
    runs = RunLog(1, tmp_path, verbose=False)

    def broken() -> str:
        raise KeyError("churn__train")

    with pytest.raises(KeyError):
        runs.run("churn", "churn__train", "asset-triggered", broken)
    out, _ = capfd.readouterr()
    assert "churn__train asset-triggered: error (KeyError) in " in out
    print("the console is back")
    assert capfd.readouterr().out == "the console is back\n"


def test_verbose_streams_the_output_and_writes_no_file(tmp_path, capfd):
    runs = RunLog(1, tmp_path / "logs", verbose=True)
    runs.run("churn", "churn__train", "2026-01-14", lambda: print("task log line") or "success")
    out, _ = capfd.readouterr()
    assert out.splitlines()[0] == "task log line" and out.splitlines()[1].startswith("[1/1] churn churn__train")
    assert not (tmp_path / "logs").exists()
