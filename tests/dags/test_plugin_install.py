"""mlops_airflow as an installed package: Airflow finds the plugin and the provider through the package's
entry points, with nothing in its plugins folder and nothing on PYTHONPATH."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import airflow


def import_string(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _entry_point(group: str):
    (ep,) = [e for e in entry_points(group=group) if e.value.startswith("mlops_airflow.")]
    return ep


def test_the_entry_points_resolve_to_the_plugin_and_the_provider_info():
    from mlops_airflow.get_provider_info import get_provider_info
    from mlops_airflow.plugin import MlopsPlugin

    plugin = _entry_point("airflow.plugins")
    assert (plugin.name, plugin.load()) == ("mlops", MlopsPlugin)
    assert _entry_point("apache_airflow_provider").load() is get_provider_info
    assert plugin.dist.name == get_provider_info()["package-name"] == "mlops-airflow-platform"


def test_the_provider_info_validates_against_airflows_schema_and_names_real_classes():
    import jsonschema

    from mlops_airflow.get_provider_info import get_provider_info

    info = get_provider_info()
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(info, schema)
    assert info["versions"] == [_entry_point("airflow.plugins").dist.version]
    (conn_type,) = info["connection-types"]
    hook = import_string(conn_type["hook-class-name"])
    assert (hook.conn_type, hook.hook_name, hook.default_conn_name) == (
        conn_type["connection-type"], conn_type["hook-name"], "mlops_mlflow")
    assert {import_string(name).__name__ for name in info["extra-links"]} == {
        "MlflowRunLink", "ModelVersionLink", "DataDocsLink", "EndpointLink"}
    assert [import_string(name).__name__ for name in info["notifications"]] == ["ModelEventNotifier"]
    for group in (*info["hooks"], *info["operators"]):
        for module in group["python-modules"]:
            importlib.import_module(module)  # every module named exists


def test_airflows_providers_manager_registers_the_connection_type_links_and_notifier():
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    pm = ProvidersManager()
    assert "mlops-airflow-platform" in pm.providers
    assert ProvidersManagerTaskRuntime().hooks["mlflow"].hook_class_name == "mlops_airflow.hooks.mlflow.MlflowHook"
    assert {"mlops_airflow.links.MlflowRunLink", "mlops_airflow.links.DataDocsLink"} <= set(pm.extra_links_class_names)
    assert "mlops_airflow.notifications.notifier.ModelEventNotifier" in pm.notification
    assert "extra__mlflow__ca_bundle" in pm.connection_form_widgets
    assert "extra" in pm.field_behaviours["mlflow"]["hidden_fields"]


def test_airflow_finds_the_plugin_once_with_an_empty_plugins_folder_and_no_pythonpath(tmp_path):
    (tmp_path / "plugins").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHONPATH"))}
    env.update(AIRFLOW_HOME=str(tmp_path / "home"), AIRFLOW__CORE__PLUGINS_FOLDER=str(tmp_path / "plugins"),
               AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__USAGE_DATA_COLLECTION__ENABLED="False",
               AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{tmp_path / 'airflow.db'}")
    airflow_cli = Path(sys.executable).with_name("airflow")
    out = subprocess.run([str(airflow_cli), "plugins", "-o", "json"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    plugins = json.loads(out.stdout[out.stdout.index("["):])
    (mlops,) = [p for p in plugins if p["name"] == "mlops"]
    assert [p["name"] for p in plugins].count("mlops") == 1
    assert "EntryPoint(name='mlops', value='mlops_airflow.plugin:MlopsPlugin'" in mlops["source"]
    assert [a["url_prefix"] for a in mlops["fastapi_apps"]] == ["/mlops"]
    assert [v["href"] for v in mlops["external_views"]] == ["/mlops/fleet"]
    assert len(mlops["operator_extra_links"]) == 4
