"""The platform settings: defaults, derived defaults, types, "not set", one error for every bad variable,
no ad hoc reads of MLOPS_* anywhere else, and README's tables in step with the declarations."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops.settings import ClusterSettings, SettingsError, get_settings, load, parse_bool
from mlops.settings.docs import rewrite
from mlops.settings.model import VARIABLES

ROOT = Path(__file__).resolve().parents[2]


def test_defaults(tmp_path):
    s = load({"MLOPS_PROJECT_ROOT": str(tmp_path)})
    assert s.project_root == tmp_path.resolve()
    assert (s.kubernetes.namespace, s.kubernetes.trainer_image, s.kubernetes.conn_id) == (
        "mlops", "mlops-trainer:0.1.0", "kubernetes_default")
    assert (s.kubernetes.service_account, s.kubernetes.tracking_secret, s.kubernetes.image_pull_policy) == (
        "mlops-trainer", "mlops-tracking", "IfNotPresent")
    assert (s.pods.schedule_timeout_s, s.pods.startup_timeout_s, s.pods.keep_failed_pods) == (1800, 600, False)
    assert (s.gke.gcp_conn_id, s.airflow_api.conn_id, s.tracking.conn_id) == (
        "google_cloud_default", "mlops_airflow_api", "mlops_mlflow")
    assert (s.trainer.packages, s.trainer.image_digest, s.trainer.result_path) == (
        ("trainers",), "local", "/airflow/xcom/return.json")
    assert s.trainer.termination_log == Path("/dev/termination-log")
    assert s.dags.shards == 1 and s.compute.backend is None


def test_derived_defaults(tmp_path):
    s = load({"MLOPS_PROJECT_ROOT": str(tmp_path)})
    home = tmp_path.resolve() / ".local"
    assert s.home == home and s.data_root == str(home / "data") and s.audit_root == str(home / "audit")
    assert (s.lock_dir, s.reports_dir) == (home / "locks", home / "reports")
    assert s.models_dir == tmp_path.resolve() / "include" / "models"
    assert s.expectations_dir == tmp_path.resolve() / "include" / "expectations"
    assert s.compute_dir == tmp_path.resolve() / "include" / "compute"
    assert s.tracking_uri == f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    assert s.artifact_root == (home / "mlflow" / "artifacts").as_uri()
    assert s.mlflow_ui_url == "http://localhost:5000"
    # A home of its own moves everything under it; a tracking server is also where people open MLflow.
    s = load({"MLOPS_PROJECT_ROOT": str(tmp_path), "MLOPS_HOME": str(tmp_path / "h"),
              "MLFLOW_TRACKING_URI": "https://mlflow.example.com/"})
    assert s.data_root == str(tmp_path.resolve() / "h" / "data") and s.lock_dir == tmp_path.resolve() / "h" / "locks"
    assert s.mlflow_ui_url == "https://mlflow.example.com"
    s = load({"MLOPS_MLFLOW_UI_URL": " https://ui.example.com/mlflow/ ", "MLFLOW_TRACKING_URI": "https://x"})
    assert s.mlflow_ui_url == "https://ui.example.com/mlflow"


def test_each_type_is_parsed(tmp_path):
    s = load({"MLOPS_POD_SCHEDULE_TIMEOUT_S": "42", "MLOPS_KEEP_FAILED_PODS": "Yes", "MLOPS_DAG_SHARDS": "8",
              "MLOPS_TRAINER_PACKAGES": "trainers, acme_models.sub", "MLOPS_COMPUTE_BACKEND": "gke",
              "MLOPS_LOCK_DIR": str(tmp_path), "MLOPS_TERMINATION_LOG": str(tmp_path / "t")})
    assert s.pods.schedule_timeout_s == 42 and s.pods.keep_failed_pods is True and s.dags.shards == 8
    assert s.trainer.packages == ("trainers", "acme_models.sub") and s.compute.backend == "gke"
    assert s.lock_dir == tmp_path and s.trainer.termination_log == tmp_path / "t"
    for text, value in (("1", True), ("true", True), ("on", True), ("0", False), ("False", False), ("no", False)):
        assert load({"MLOPS_KEEP_FAILED_PODS": text}).pods.keep_failed_pods is value, text
        assert parse_bool(text) is value
    assert parse_bool(True) is True
    with pytest.raises(ValueError, match="'maybe' is not true or false"):
        parse_bool("maybe")


def test_not_set_is_none_and_blank_is_not_set():
    s = load({})
    assert s.storage.artifact_root is None and s.gke.project is None and s.pods.data_root is None
    assert s.trainer.git_sha is None and s.compute.backend is None
    s = load({"MLOPS_ARTIFACT_ROOT": "gs://b/mlflow", "MLOPS_GIT_SHA": "abc", "MLOPS_COMPUTE_BACKEND": " ",
              "MLOPS_MLFLOW_CONN_ID": " "})
    assert s.storage.artifact_root == s.artifact_root == "gs://b/mlflow" and s.trainer.git_sha == "abc"
    assert s.compute.backend is None and s.tracking.conn_id == "mlops_mlflow"


def test_every_bad_variable_is_reported_at_once():
    with pytest.raises(SettingsError) as err:
        load({"MLOPS_POD_SCHEDULE_TIMEOUT_S": "30m", "MLOPS_KEEP_FAILED_PODS": "maybe", "MLOPS_DAG_SHARDS": "0",
              "MLOPS_COMPUTE_BACKEND": "k8s", "MLOPS_TRAINER_PACKAGES": "9lives"})
    message = str(err.value)
    assert message.startswith("5 platform settings are wrong:") and len(err.value.problems) == 5
    assert ("MLOPS_POD_SCHEDULE_TIMEOUT_S='30m': not a whole number; give one (e.g. MLOPS_POD_SCHEDULE_TIMEOUT_S="
            "1800), or unset it for the default (`1800`)") in message
    assert "MLOPS_KEEP_FAILED_PODS='maybe': not true or false; give true/false" in message
    assert "MLOPS_DAG_SHARDS='0': input should be greater than or equal to 1" in message
    assert "MLOPS_COMPUTE_BACKEND='k8s' is not one of 'local', 'kubernetes' or 'gke'; fix or unset it" in message
    assert "MLOPS_TRAINER_PACKAGES='9lives': give importable package names separated by commas" in message
    assert isinstance(err.value, ValueError)


def test_get_settings_follows_the_environment_and_stays_cheap(monkeypatch):
    monkeypatch.setenv("MLOPS_DAG_SHARDS", "3")
    assert get_settings().dags.shards == 3
    monkeypatch.setenv("MLOPS_DAG_SHARDS", "4")
    assert get_settings().dags.shards == 4 and ClusterSettings.from_env().namespace == "mlops"
    monkeypatch.setenv("MLOPS_K8S_NAMESPACE", "training")
    assert ClusterSettings.from_env().namespace == "training"
    monkeypatch.setenv("MLOPS_DAG_SHARDS", "none")
    with pytest.raises(SettingsError, match="MLOPS_DAG_SHARDS='none'"):
        get_settings()
    monkeypatch.delenv("MLOPS_DAG_SHARDS")
    get_settings()
    started = time.perf_counter()
    for _ in range(1000):
        get_settings()
    per_call = (time.perf_counter() - started) / 1000
    assert per_call < 0.001, f"get_settings() took {per_call * 1e6:.0f} µs a call; DAG parsing calls it often"


def test_the_cluster_view_names_the_sections_values():
    s = load({"MLOPS_GKE_PROJECT": "p", "MLOPS_GKE_LOCATION": "l", "MLOPS_GKE_CLUSTER": "c",
              "MLOPS_POD_DATA_ROOT": "gs://d", "MLOPS_POD_ARTIFACT_ROOT": "gs://a", "MLOPS_K8S_CONN_ID": "k"})
    c = s.cluster
    assert (c.gke_project, c.gke_location, c.gke_cluster) == ("p", "l", "c")
    assert (c.pod_data_root, c.pod_artifact_root, c.kubernetes_conn_id) == ("gs://d", "gs://a", "k")
    assert (c.gcp_conn_id, c.schedule_timeout_s, c.startup_timeout_s) == ("google_cloud_default", 1800, 600)
    assert (c.trainer_image, c.service_account, c.tracking_secret, c.image_pull_policy, c.keep_failed_pods) == (
        "mlops-trainer:0.1.0", "mlops-trainer", "mlops-tracking", "IfNotPresent", False)


def test_every_variable_has_a_description_and_the_check_command_reports():
    assert "MLOPS_DAG_SHARDS" in VARIABLES and len(VARIABLES) >= 35
    from mlops.settings.errors import field_of

    assert all(field_of(name).description for name in VARIABLES)
    env = {**os.environ, "MLOPS_POD_STARTUP_TIMEOUT_S": "soon"}
    out = subprocess.run([sys.executable, "-m", "mlops.settings", "check"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1 and "MLOPS_POD_STARTUP_TIMEOUT_S='soon'" in out.stderr


# ------------------------------------------------------------------ no MLOPS_* read outside the settings

def _mlops_name(node: ast.AST, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        value = node.value
    elif isinstance(node, ast.Name) and node.id in constants:
        value = constants[node.id]
    else:
        return None
    return value if value.startswith("MLOPS_") else None


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (isinstance(node, ast.Name) and
                                                                              node.id == "environ")


def environment_reads(source: str) -> list[tuple[int, str]]:
    """(line, variable) for each read of an MLOPS_* variable from the environment in `source`."""
    tree = ast.parse(source)
    constants = {t.id: n.value.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                 and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                 for t in n.targets if isinstance(t, ast.Name)}
    reads = []
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Subscript) and _is_environ(node.value) and isinstance(node.ctx, ast.Load):
            name = _mlops_name(node.slice, constants)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            environ_get = isinstance(func, ast.Attribute) and func.attr in ("get", "pop") and _is_environ(func.value)
            getenv = (isinstance(func, ast.Attribute) and func.attr == "getenv") or (
                isinstance(func, ast.Name) and func.id == "getenv")
            if environ_get or getenv:
                name = _mlops_name(node.args[0], constants)
        elif isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops) and \
                any(_is_environ(c) for c in node.comparators):
            name = _mlops_name(node.left, constants)
        if name:
            reads.append((node.lineno, name))
    return reads


def test_the_rule_finds_each_kind_of_read():
    source = ("import os\nfrom os import environ, getenv\nNAME = 'MLOPS_X'\n"
              "a = os.environ['MLOPS_A']\nb = os.environ.get('MLOPS_B', '')\nc = os.getenv('MLOPS_C')\n"
              "d = 'MLOPS_D' not in os.environ\ne = environ.get(NAME)\nf = getenv('MLOPS_F')\n"
              "os.environ['MLOPS_OK'] = 'written'\nenv = {'MLOPS_OK': '1'}\ng = os.environ.get('HOME')\n")
    assert [name for _, name in environment_reads(source)] == [
        "MLOPS_A", "MLOPS_B", "MLOPS_C", "MLOPS_D", "MLOPS_X", "MLOPS_F"]


def test_no_module_outside_the_settings_reads_mlops_variables():
    settings = ROOT / "include" / "mlops" / "settings"
    files = [p for folder in ("include", "plugins", "dags") for p in (ROOT / folder).rglob("*.py")
             if settings not in p.parents]
    assert len(files) > 40
    found = [f"{p.relative_to(ROOT)}:{line}: {name}" for p in files for line, name in environment_reads(p.read_text())]
    assert not found, "read these through mlops.settings.get_settings() (declare new ones in " \
                      f"mlops/settings/model.py): {found}"


# ------------------------------------------------------------------------------------ generated docs

def test_readme_variable_tables_are_current():
    readme = (ROOT / "README.md").read_text()
    assert rewrite(readme) == readme, "README's variable tables are stale: run `make docs`"
    for name in VARIABLES:
        assert readme.count(f"| `{name}` |") == 1, f"{name} should be in exactly one README table"


def test_the_docs_markers_must_cover_every_section_once():
    with pytest.raises(ValueError, match=r"sections in no table \[.*'dags'.*\].*sections in two tables \['pods'\]"):
        rewrite("<!-- settings: storage pods -->\n<!-- /settings -->\n<!-- settings: pods -->\n<!-- /settings -->\n")
