"""The README's main job, as a user runs it: the demo twice on a fresh store. The second run must
train nothing, create no model version and write no audit record. The console gets one line per DAG run;
the task logs go to files under $MLOPS_HOME/logs/."""

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import ROOT

NAMES = ["churn", "demand"]  # the CPU models; demand_nn asks for a GPU pool and is left out


def run_demo(env):
    """Returns the console output and the task logs it points at: {file name: text}, in run order."""
    out = subprocess.run([sys.executable, "-m", "tools.demo"], env=env, capture_output=True, text=True,
                         cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    m = re.search(r"^Task logs: (\S+)/ ", out.stdout, re.M)
    assert m, out.stdout[:2000]
    logs = sorted(Path(m.group(1)).glob("*.log"))
    assert Path(m.group(1)).is_relative_to(env["MLOPS_HOME"]) and len(logs) == RUNS + 1  # + loading the DAGs
    return out.stdout, {p.name: p.read_text() for p in logs}


def assert_each_training_run_says(logs: dict[str, str], line: str, retrained: bool) -> None:
    """Every training run's log holds `line` exactly once (the asset-triggered run's only where it started);
    a miss names the file and shows where it ended."""
    train_logs = {name: text for name, text in logs.items()
                  if "__train-" in name and (retrained or "asset-triggered" not in name)}
    assert len(train_logs) == 2 * len(NAMES) + retrained, sorted(logs)
    for name, text in train_logs.items():
        assert text.count(line) == 1, f"{name}: {text.count(line)} x {line!r}; its last lines:\n" + \
            "\n".join(text.splitlines()[-40:])


# Per model two training runs and a first deploy; the watched model: score and monitor for four days, then
# its retraining and the deploy of its new champion.
RUNS = 2 * len(NAMES) + len(NAMES) + 2 * 4 + 1 + 1


def assert_one_line_per_run(stdout):
    progress = re.findall(rf"^\[\s*(\d+)/{RUNS}\] ({'|'.join(NAMES)})\s+(\S+) (\S+): (.+) in [\d.]+s$", stdout, re.M)
    assert [int(p[0]) for p in progress] == list(range(1, RUNS + 1)), stdout
    assert "[info" not in stdout and "[warning" not in stdout and "great_expectations" not in stdout
    assert len(stdout.splitlines()) < 75, stdout


def champions(stdout):
    table = stdout.split("Champions:", 1)[1]
    return {m.group(1): m.group(0).split() for m in re.finditer(rf"^({'|'.join(NAMES)})\s+v\d+.*$", table, re.M)}


def model_versions(home):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
    return {name: sorted(str(v.version) for v in client.search_model_versions(f"name = '{name}'"))
            for name in NAMES}


def test_demo_twice_second_run_is_all_cache_hits(tmp_path, airflow_db):
    # A plain shell's environment: nothing of the platform's or MLflow's that earlier tests in this worker
    # left behind (tracking.client() exports MLFLOW_TRACKING_URI, which would point the demo at their store).
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLOPS_", "MLFLOW_")) or k == "MLFLOW_DISABLE_TELEMETRY"}
    env["MLOPS_HOME"] = str(tmp_path / "home")
    first, first_logs = run_demo(env)
    assert_one_line_per_run(first)
    for dag_id in (f"{name}__train" for name in NAMES):
        for day in ("2026-01-14", "2026-01-15"):
            assert f"{dag_id} {day}: success" in first
    assert "demand_nn asks for 1 GPU(s) on pool 'l4': left out of the laptop demo" in first
    rows = champions(first)
    assert set(rows) == set(NAMES)
    model, version, metric, value, interval, fingerprint, run_id = rows["churn"]
    assert metric == "roc_auc" and float(value) > 0.6 and len(fingerprint) == 32 and len(run_id) == 32
    assert re.fullmatch(r"\d{4}-\d\d-\d\d\.\.\d{4}-\d\d-\d\d", interval)
    # demand is watched while its data drifts: quiet while its champion cools down, then the alarm, and
    # the retraining run started from the queued asset event promotes a third version.
    story = first.split("demand in production", 1)[1]
    assert "2026-01-16: " in story and "no alarm (cooldown" in story
    assert re.search(r"2026-01-18: drifted temperature; .*ALARM \(2 of the last 3 checks were bad", story)
    assert re.search(r"retraining run asset_triggered__\S+ \(started from the queued asset event\): success; "
                     r"champion v1 -> v3", story)
    assert rows["demand"][1] == "v3" and rows["demand"][4].endswith("..2026-01-27")
    assert_each_training_run_says(first_logs, "trained: models:/", retrained=True)
    # GX's config dump is silenced where GX logs it
    assert not any("Loading 'datasources'" in text for text in first_logs.values())
    # online: both champions deployed, a request answered, demand's new champion rolled out through the bake
    online = first.split("Online serving:", 1)[1].split("Where the time went", 1)[0]
    assert re.search(r"churn: first rollout of v1: deployed \(resolve .*retire [\d.]+ s\)", online), online
    assert re.search(r"demand: deploy run asset_triggered__\S+ \(started from the champion's asset event\): success",
                     online), online
    assert re.search(r"demand: v1 -> v3: deployed", online), online
    assert re.search(r"bake: 300 requests of the partition of 2026-01-\d\d, scored in batch, in shadow to both "
                     r"versions: error rate 0.00%, p50 [\d.]+ ms, p99 [\d.]+ ms, PSI against the stable version",
                     online), online
    assert re.search(r"POST http://127.0.0.1:\d+/invocations .* \(served by v3 in [\d.]+ ms\)", online), online
    assert "stopped the model servers" in online
    audit_files = sorted(p.name for p in (tmp_path / "home" / "audit").rglob("*.json") if p.parent.name != "rollouts")
    versions_before = model_versions(tmp_path / "home")
    assert versions_before == {"churn": ["1", "2"], "demand": ["1", "2", "3"]}

    second, second_logs = run_demo(env)
    assert_one_line_per_run(second)
    assert champions(second) == rows
    assert "no retraining requested" in second  # the new champion's cooldown
    assert_each_training_run_says(second_logs, "cache hit, reused: models:/", retrained=False)
    assert not any("trained: models:/" in text for text in second_logs.values())
    assert model_versions(tmp_path / "home") == versions_before
    assert sorted(p.name for p in (tmp_path / "home" / "audit").rglob("*.json")
                  if p.parent.name != "rollouts") == audit_files
    # the deployed versions came back (the first run had stopped its servers), through the gates, alias unmoved
    assert "churn: first rollout of v1: deployed" in second and "demand: first rollout of v3: deployed" in second
    assert "demand: no new champion, no rollout" in second

    serve_then_curl(env)


def readme_curl_command() -> str:
    """The README's curl one-liner for the served demand model."""
    text = (ROOT / "README.md").read_text()
    m = re.search(r"^(curl -s \"\$\(\.venv/bin/python -m mlops\.serving url demand\)/invocations\".*?\n.*?)$", text,
                  re.M)
    assert m, "README lost its curl one-liner"
    return m.group(1).replace("\\\n", " ")


def serve_then_curl(env) -> None:
    """`make serve`'s command in a plain shell, then the README's curl line, then Ctrl-C (SIGINT)."""
    serve = subprocess.Popen([sys.executable, "-m", "mlops.serving", "serve"], env=env, cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    lines = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = serve.stdout.readline()
            lines.append(line)
            if "serving until Ctrl-C" in line or not line:
                break
        assert "serving until Ctrl-C" in "".join(lines), "".join(lines)
        assert re.search(r"demand: v3 serves at http://127.0.0.1:\d+ \(2 replica\(s\)\)", "".join(lines)), lines
        command = readme_curl_command()
        curl = subprocess.run(["bash", "-c", command + " -i"], env=env, cwd=ROOT, capture_output=True, text=True,
                              timeout=60)
        assert curl.returncode == 0 and "HTTP/1.1 200 OK" in curl.stdout, (shlex.quote(command), curl.stdout,
                                                                          curl.stderr)
        assert "x-mlops-model-version: 3" in curl.stdout and '"predictions": [' in curl.stdout, curl.stdout
    finally:
        os.killpg(serve.pid, signal.SIGINT)
        rest, _ = serve.communicate(timeout=60)
    assert serve.returncode == 0 and "stopped every server" in rest, rest
