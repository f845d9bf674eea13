"""What this package adds to Airflow as a provider (the `apache_airflow_provider` entry point): the `mlflow`
connection type, the operator extra links and the notifier, so `airflow providers get` and the connection form
know them. Plain data: the providers manager calls this in every Airflow process."""

from __future__ import annotations

PACKAGE_NAME = "mlops-airflow-platform"  # the distribution in pyproject.toml; Airflow checks they match


def get_provider_info() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    try:
        versions = [version(PACKAGE_NAME)]
    except PackageNotFoundError:  # imported from a source tree that is not installed
        versions = []
    return {
        "package-name": PACKAGE_NAME,
        "name": "MLOps platform",
        "description": "One YAML spec per model: validate, train, track, compare and promote on Apache Airflow.",
        "versions": versions,
        "integrations": [{"integration-name": "MLflow", "external-doc-url": "https://mlflow.org/docs/latest/",
                          "tags": ["software"]}],
        "hooks": [{"integration-name": "MLflow", "python-modules": ["mlops_airflow.hooks.mlflow"]}],
        "operators": [{"integration-name": "MLflow", "python-modules": [
            "mlops_airflow.operators.evaluate", "mlops_airflow.operators.monitor",
            "mlops_airflow.operators.promote", "mlops_airflow.operators.rollback", "mlops_airflow.operators.score",
            "mlops_airflow.operators.train_local", "mlops_airflow.operators.train_kubernetes",
            "mlops_airflow.operators.train_gke", "mlops_airflow.operators.validate"]}],
        "connection-types": [{
            "connection-type": "mlflow", "hook-class-name": "mlops_airflow.hooks.mlflow.MlflowHook",
            "hook-name": "MLflow tracking server",
            # The connection form (Airflow 3 reads it from here, without importing the hook).
            "conn-fields": {
                "insecure_tls": {"label": "Skip TLS verification", "schema": {"type": ["boolean", "null"],
                                                                              "default": False}},
                "ca_bundle": {"label": "CA bundle path", "schema": {"type": ["string", "null"]},
                              "description": "a PEM file that signs the server's certificate"},
            },
            "ui-field-behaviour": {
                "hidden-fields": ["extra"],
                "relabeling": {"host": "Host or URL", "schema": "Path prefix", "login": "Username (basic auth)",
                               "password": "Password, or a token without a username"},
                "placeholders": {"host": "https://mlflow.example.com", "port": "5000", "schema": "/tracking"},
            },
        }],
        "extra-links": ["mlops_airflow.links.MlflowRunLink", "mlops_airflow.links.ModelVersionLink",
                        "mlops_airflow.links.DataDocsLink", "mlops_airflow.links.EndpointLink"],
        "notifications": ["mlops_airflow.notifications.notifier.ModelEventNotifier"],
    }
