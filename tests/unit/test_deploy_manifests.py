"""The deployment files (deploy/) against the Kubernetes API schema and against what the code really reads.

No cluster and no Helm chart here: the plain manifests are validated with kubernetes-validate (strict), and
the chart's values are checked for the names they share with the code (settings, Secrets, connections, the
pool sync command, images), since rendering them needs the chart (docs/deployment.md does that at install).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import kubernetes_validate
import pytest
import yaml

from helpers import ROOT
from mlops.compute import load_catalogue
from mlops.podplan import SECRET_ENV

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
HELM = DEPLOY / "helm"
GUIDE = ROOT / "docs" / "deployment.md"
CATALOGUE = load_catalogue(ROOT / "include" / "compute" / "pools.yaml")
# GKE's compute classes with node pool auto-creation need 1.33; the newest schema the validator has as well.
K8S_VERSIONS = ["1.33.0", kubernetes_validate.latest_version()]
CHART_VERSION = "1.18"


def docs(path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


MANIFESTS = sorted(K8S.rglob("*.yaml"))
CUSTOM = {"ClusterServingRuntime": "clusterservingruntime-v1alpha1.json",
          "InferenceService": "inferenceservice-v1beta1.json"}
CLUSTER_SCOPED = {"Namespace", "ClusterServingRuntime"}
ALL_OBJECTS = [(p, d) for p in MANIFESTS for d in docs(p)]


def objects(kind: str) -> list[dict]:
    return [d for _, d in ALL_OBJECTS if d["kind"] == kind]


def named(kind: str, name: str, namespace: str | None = None) -> dict:
    found = [d for d in objects(kind) if d["metadata"]["name"] == name
             and (namespace is None or d["metadata"].get("namespace") == namespace)]
    assert len(found) == 1, f"{kind} {namespace}/{name}: {len(found)} found"
    return found[0]


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load((HELM / "values.yaml").read_text())


@pytest.fixture(scope="module")
def env(values) -> dict[str, str]:
    return {e["name"]: e["value"] for e in values["env"]}


@pytest.fixture(scope="module")
def secret_env(values) -> dict[str, tuple[str, str]]:
    return {s["envName"]: (s["secretName"], s["secretKey"]) for s in values["secret"]}


# ------------------------------------------------------------------------------------------- plain manifests

def test_the_manifests_exist():
    names = {p.relative_to(K8S).as_posix() for p in MANIFESTS}
    assert {"namespace.yaml", "rbac.yaml", "mlflow.yaml", "quota.yaml", "shared-storage.yaml",
            "examples/mlflow-secret.example.yaml", "examples/training-secret.example.yaml"} <= names


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path, obj", ALL_OBJECTS,
                         ids=[f"{p.relative_to(K8S)}:{d['kind']}/{d['metadata']['name']}" for p, d in ALL_OBJECTS])
def test_every_manifest_is_valid_kubernetes(path, obj, version):
    if obj["kind"] in CUSTOM:  # KServe's kinds, against their schema (tests/data/crds, tools/kserve_schema.py)
        import json

        import jsonschema

        jsonschema.validate(obj, json.loads((ROOT / "tests" / "data" / "crds" / CUSTOM[obj["kind"]]).read_text()))
        return
    kubernetes_validate.validate(obj, version, strict=True)


def test_everything_is_namespaced_in_the_platform_namespaces():
    namespaces = {d["metadata"]["name"] for d in objects("Namespace")}
    assert namespaces == {"airflow", "mlops", "mlflow"}
    for path, obj in ALL_OBJECTS:
        assert obj["kind"] not in ("ClusterRole", "ClusterRoleBinding"), path
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"].get("namespace") in namespaces, f"{path}: {obj['kind']} {obj['metadata']['name']}"


def test_example_secrets_hold_placeholders_only():
    for path in (K8S / "examples").glob("*.yaml"):
        assert path.name.endswith(".example.yaml")
        for secret in docs(path):
            assert secret["kind"] == "Secret" and "data" not in secret
            text = yaml.safe_dump(secret["stringData"])
            for key, value in secret["stringData"].items():
                if "password" in key.lower() or ("uri" in key.lower() and "postgresql" in value):
                    assert "CHANGE_ME" in value, f"{path.name}: {key} looks like a real value"
            assert "CHANGE_ME" in text


# ------------------------------------------------------------------------------------------------------- RBAC

EXPECTED_RULES = {
    "pods": {"create", "get", "list", "watch", "delete", "patch"},
    "pods/log": {"get"},
    "pods/exec": {"create", "get"},
    "events": {"get", "list", "watch"},
}


def test_the_role_grants_exactly_pods_logs_exec_and_events_in_the_training_namespace(env):
    roles = objects("Role")
    # the other Role, mlops-serving, is checked against what the deploys use (test_deploy_kubernetes.py)
    assert sorted(r["metadata"]["name"] for r in roles) == ["mlops-serving", "mlops-training-pods"]
    role = named("Role", "mlops-training-pods")
    assert role["metadata"]["namespace"] == env["MLOPS_K8S_NAMESPACE"] == "mlops"
    granted: dict[str, set[str]] = {}
    for rule in role["rules"]:
        assert rule["apiGroups"] == [""], rule
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, "no resourceNames / nonResourceURLs tricks"
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
        for resource in rule["resources"]:
            granted.setdefault(resource, set()).update(rule["verbs"])
    assert granted == EXPECTED_RULES


def test_the_role_is_bound_to_airflows_service_account_and_to_the_google_identity_only(values):
    binding = named("RoleBinding", "mlops-training-pods", "mlops")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "mlops-training-pods"}
    subjects = {(s["kind"], s.get("namespace"), s["name"]) for s in binding["subjects"]}
    airflow_sa = named("ServiceAccount", "airflow-mlops", "airflow")
    gsa = airflow_sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
    assert subjects == {("ServiceAccount", "airflow", "airflow-mlops"), ("User", None, gsa)}
    # The chart runs scheduler, workers and triggerer as that ServiceAccount and does not create its own.
    for component in ("scheduler", "workers", "triggerer"):
        assert values[component]["serviceAccount"] == {"create": False, "name": "airflow-mlops"}, component
    serving = named("RoleBinding", "mlops-serving", "mlops")
    assert {(s["kind"], s.get("namespace"), s["name"]) for s in serving["subjects"]} == subjects
    assert len(objects("RoleBinding")) == 2


def test_the_serving_pods_service_account_has_no_api_access():
    from mlops.settings import get_settings

    sa = named("ServiceAccount", get_settings().serving.service_account, "mlops")
    assert sa["automountServiceAccountToken"] is False
    assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].startswith("mlops-serving@")
    bound = {s["name"] for b in objects("RoleBinding") for s in b["subjects"]}
    assert sa["metadata"]["name"] not in bound


def test_the_training_pods_service_account_has_no_api_access(env):
    sa = named("ServiceAccount", env["MLOPS_K8S_SERVICE_ACCOUNT"], env["MLOPS_K8S_NAMESPACE"])
    assert sa["automountServiceAccountToken"] is False
    assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].startswith("mlops-trainer@")
    for binding in objects("RoleBinding"):
        assert all(s["name"] != sa["metadata"]["name"] for s in binding["subjects"])


def test_service_accounts_use_workload_identity(values):
    for sa in objects("ServiceAccount"):
        assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].endswith(
            ".iam.gserviceaccount.com"), sa["metadata"]["name"]
    api = values["apiServer"]["serviceAccount"]
    assert api["annotations"]["iam.gke.io/gcp-service-account"].startswith("airflow@")
    # Each bound in the guide: gcloud ... workloadIdentityUser for namespace/name.
    guide = GUIDE.read_text()
    for ns, name in [("airflow", "airflow-mlops"), ("airflow", api["name"]), ("mlops", "mlops-trainer"),
                     ("mlflow", "mlflow")]:
        assert f"{ns}/{name}" in guide, f"no workload identity binding for {ns}/{name} in the guide"


# --------------------------------------------------------------------------------------- training namespace

def test_the_gpu_quota_is_the_catalogues_gpu_pools():
    quota = named("ResourceQuota", "mlops-training", "mlops")
    gpu_pools = {p.airflow_pool for p in CATALOGUE.pools.values() if p.gpu_resource}
    slots = CATALOGUE.airflow_pools()
    assert int(quota["spec"]["hard"]["requests.nvidia.com/gpu"]) == sum(slots[p] for p in gpu_pools)
    limit_range = named("LimitRange", "mlops-training", "mlops")
    for limit in limit_range["spec"]["limits"]:
        assert "default" not in limit and "max" not in limit, "no default limits: trainers have no CPU limit"


def test_the_tracking_secret_has_the_keys_training_pods_read(env, secret_env):
    secret = named("Secret", env["MLOPS_TRACKING_SECRET"], env["MLOPS_K8S_NAMESPACE"])
    required = {name for name, optional in SECRET_ENV if not optional}
    assert required <= set(secret["stringData"]) <= {name for name, _ in SECRET_ENV}
    uri = secret["stringData"]["MLFLOW_TRACKING_URI"]
    service = named("Service", "mlflow", "mlflow")
    assert uri == f"http://mlflow.mlflow.svc.cluster.local:{service['spec']['ports'][0]['port']}"
    # Airflow's own containers read a Secret of the same name with the same keys.
    for key in secret["stringData"]:
        assert secret_env[key] == (env["MLOPS_TRACKING_SECRET"], key)


# ----------------------------------------------------------------------------------------------------- MLflow

def test_mlflow_runs_basic_auth_on_postgres_with_gcs_artifacts_non_root():
    deployment = named("Deployment", "mlflow", "mlflow")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    assert container["command"] == ["mlflow"] and args[0] == "server"
    assert "--app-name=basic-auth" in args
    assert any(a.startswith("--artifacts-destination=gs://") for a in args)
    allowed = next(a for a in args if a.startswith("--allowed-hosts="))
    assert "mlflow.mlflow.svc.cluster.local:5000" in allowed.split("=", 1)[1].split(",")
    assert not any("postgresql://" in a for a in args), "the store URI comes from the Secret, not the command line"
    env = {e["name"]: e for e in container["env"]}
    assert env["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"] == {"name": "mlflow",
                                                                             "key": "backend-store-uri"}
    assert env["MLFLOW_AUTH_CONFIG_PATH"]["value"].endswith("/basic_auth.ini")
    assert env["MLFLOW_DISABLE_TELEMETRY"]["value"] == "true"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health", probe
    assert {"cpu", "memory"} <= set(container["resources"]["requests"]) and "memory" in container["resources"]["limits"]
    # The example Secret has every key the Deployment reads.
    example = named("Secret", "mlflow", "mlflow")
    keys = {e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"] if "valueFrom" in e}
    keys |= {i["key"] for v in pod["volumes"] if "secret" in v for i in v["secret"]["items"]}
    assert keys <= set(example["stringData"])
    assert "[mlflow]" in example["stringData"]["basic_auth.ini"]


def test_mlflow_is_reachable_from_training_pods_by_service_name():
    deployment = named("Deployment", "mlflow", "mlflow")
    service = named("Service", "mlflow", "mlflow")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert service["spec"]["ports"][0]["targetPort"] in {p["name"] for p in container["ports"]}


# ------------------------------------------------------------------------------------------------ Helm values

def test_values_header_and_guide_name_the_same_chart_version():
    header = (HELM / "values.yaml").read_text().split("\n\n", 1)[0]
    assert f"chart {CHART_VERSION}.x" in header
    assert f"CHART_VERSION={CHART_VERSION}." in GUIDE.read_text()
    assert f"chart {CHART_VERSION}.x" in (HELM / "values-kubernetes-executor.yaml").read_text() \
        or f"({CHART_VERSION}.x)" in (HELM / "values-kubernetes-executor.yaml").read_text()


def test_values_shape(values):
    assert values["executor"] == "CeleryExecutor"
    assert values["postgresql"]["enabled"] is False and values["redis"]["enabled"] is False
    assert values["data"]["metadataSecretName"] == "airflow-metadata"
    assert values["data"]["brokerUrlSecretName"] == "airflow-broker-url"
    for key in ("fernetKeySecretName", "apiSecretKeySecretName", "jwtSecretName"):
        assert values[key], key
    assert values["dags"]["gitSync"]["enabled"] is False, "DAGs, plugins and specs are in the image"
    assert values["allowPodLaunching"] is False, "Celery workers only start training pods, in their own namespace"


def test_the_kubernetes_executor_overlay(values):
    overlay = yaml.safe_load((HELM / "values-kubernetes-executor.yaml").read_text())
    assert overlay["executor"] == "KubernetesExecutor"
    assert overlay["allowPodLaunching"] is True
    assert overlay["redis"]["enabled"] is False and overlay["data"]["brokerUrlSecretName"] is None
    assert overlay["config"]["kubernetes_executor"]["namespace"] == "airflow"
    assert set(overlay) <= set(values) | {"executor"}, "the overlay only overrides keys values.yaml has"


def test_telemetry_is_off(values, env):
    assert env["AIRFLOW__USAGE_DATA_COLLECTION__ENABLED"] == "False"
    assert env["SCARF_ANALYTICS"] == "false" and env["DO_NOT_TRACK"] == "true"
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true" and env["GX_ANALYTICS_ENABLED"] == "false"
    assert values["config"]["usage_data_collection"]["enabled"] == "False"
    assert values["config"]["core"]["load_examples"] == "False"


def test_every_platform_setting_in_values_is_one_the_code_reads(env):
    from mlops.settings import VARIABLES, load

    settings = {name: value for name, value in env.items() if name.startswith("MLOPS_")}
    assert settings
    unknown = sorted(set(settings) - set(VARIABLES))
    assert not unknown, f"set in values.yaml but not a platform setting (mlops/settings/model.py): {unknown}"
    deployed = load(settings)  # each value parses as its setting's type
    assert deployed.compute.backend == settings["MLOPS_COMPUTE_BACKEND"]
    assert deployed.data_root == settings["MLOPS_DATA_ROOT"]


def test_the_platform_settings_for_the_gke_backend(values, env):
    assert env["MLOPS_COMPUTE_BACKEND"] in ("gke", "kubernetes")
    for name in ("MLOPS_GKE_PROJECT", "MLOPS_GKE_LOCATION", "MLOPS_GKE_CLUSTER", "MLOPS_TRAINER_IMAGE",
                 "MLOPS_K8S_NAMESPACE", "MLOPS_MLFLOW_UI_URL"):
        assert env[name], name
    assert env["MLOPS_DATA_ROOT"].startswith("gs://") and env["MLOPS_AUDIT_ROOT"].startswith("gs://")
    assert "MLOPS_ARTIFACT_ROOT" not in env, "artifacts go through the tracking server's gs:// destination"
    mlflow_args = named("Deployment", "mlflow", "mlflow")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert any(a.startswith("--artifacts-destination=gs://") for a in mlflow_args)
    assert env["MLOPS_MLFLOW_UI_URL"].startswith("https://")
    # Lock and reports on the volume every Airflow pod mounts.
    claim = named("PersistentVolumeClaim", "mlops-shared", "airflow")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    (mount,) = [m for m in values["volumeMounts"] if m["name"] == "mlops-shared"]
    for name in ("MLOPS_LOCK_DIR", "MLOPS_REPORTS_DIR", "MLOPS_HOME"):
        assert env[name].startswith(mount["mountPath"]), name


def test_connections_are_the_ones_the_code_uses(secret_env, env):
    from mlops.settings import load
    from mlops.spec import Notifications

    conn_ids = {name.removeprefix("AIRFLOW_CONN_").lower() for name in secret_env if name.startswith("AIRFLOW_CONN_")}
    # The code's defaults: the settings' connection fields and a spec's mail connection.
    defaults = load({})
    assert {defaults.kubernetes.conn_id, defaults.gke.gcp_conn_id, defaults.tracking.conn_id,
            defaults.airflow_api.conn_id, Notifications.model_fields["smtp_conn_id"].default} == conn_ids == {
        "kubernetes_default", "google_cloud_default", "mlops_mlflow", "mlops_airflow_api", "smtp_default"}
    # The connection ids the values pass are the ones the cluster settings read, and the code's defaults.
    cluster = load({name: value for name, value in env.items() if name.startswith("MLOPS_")}).cluster
    assert {cluster.kubernetes_conn_id, cluster.gcp_conn_id} <= conn_ids
    assert cluster.namespace == "mlops" and cluster.tracking_secret == "mlops-tracking"
    assert cluster.gke_project and cluster.gke_location and cluster.gke_cluster
    assert (defaults.cluster.kubernetes_conn_id, defaults.cluster.gcp_conn_id) == (
        cluster.kubernetes_conn_id, cluster.gcp_conn_id)
    for name, (secret, key) in secret_env.items():
        if name.startswith("AIRFLOW_CONN_"):
            assert (secret, key) == ("airflow-connections", name)


def test_every_secret_the_deployment_reads_is_created_in_the_guide(values, secret_env):
    guide = GUIDE.read_text()
    created = set(re.findall(r"create secret generic ([a-z0-9-]+)", guide))
    wanted = {values["data"]["metadataSecretName"], values["data"]["brokerUrlSecretName"],
              values["fernetKeySecretName"], values["apiSecretKeySecretName"], values["jwtSecretName"]}
    wanted |= {secret for secret, _ in secret_env.values()}
    wanted |= {v["secret"]["secretName"] for v in values["volumes"] if "secret" in v}
    wanted.add("mlflow")
    assert wanted <= created, f"Secrets not created in docs/deployment.md: {sorted(wanted - created)}"
    for name, (_secret, key) in secret_env.items():
        assert f"{key}=" in guide, f"the guide never sets {key} ({name})"


def test_pools_are_synced_at_start_up_with_the_real_command(values):
    (sync,) = [c for c in values["scheduler"]["extraInitContainers"] if c["name"] == "mlops-pools-sync"]
    assert sync["command"] == ["python", "-m", "mlops_airflow.pools", "sync"]
    env = {e["name"]: e for e in sync["env"]}
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]["valueFrom"]["secretKeyRef"] == {
        "name": values["data"]["metadataSecretName"], "key": "connection"}
    # The package is installed in the Airflow image (plugins/ copied into the project before `pip install`),
    # so the command needs no PYTHONPATH.
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "PYTHONPATH" not in env
    assert dockerfile.index("COPY --chown=airflow:0 plugins /opt/mlops/plugins") < \
        dockerfile.index("RUN pip install --no-cache-dir --no-deps /opt/mlops")
    # The command exists and takes exactly this form, from the installed package.
    out = subprocess.run([sys.executable, "-m", "mlops_airflow.pools", "sync", "--help"], capture_output=True,
                         text=True, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, cwd="/",
                         timeout=120)
    assert out.returncode == 0 and "--dry-run" in out.stdout, out.stderr
    # The auth passwords are copied before, from the volume the chart adds to every Airflow pod.
    names = [c["name"] for c in values["scheduler"]["extraInitContainers"]]
    assert names.index("mlops-auth-passwords") < names.index("mlops-pools-sync")
    volumes = {v["name"] for v in values["volumes"]}
    for container in values["scheduler"]["extraInitContainers"]:
        assert {m["name"] for m in container.get("volumeMounts", [])} <= volumes


def test_images_match_the_dockerfile_targets(values, env):
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert (re.search(r"^FROM \S+ AS airflow$", dockerfile, re.M)
            and re.search(r"^FROM \S+ AS trainer$", dockerfile, re.M))
    airflow_image = f"{values['images']['airflow']['repository']}:{values['images']['airflow']['tag']}"
    assert values["images"]["airflow"]["repository"].endswith("/mlops-airflow")
    assert env["MLOPS_TRAINER_IMAGE"].rsplit(":", 1)[0].endswith("/mlops-trainer")
    assert env["MLOPS_TRAINER_IMAGE"].rsplit(":", 1)[1] == values["images"]["airflow"]["tag"]
    for container in values["scheduler"]["extraInitContainers"]:
        assert container["image"] == airflow_image, container["name"]
    mlflow = named("Deployment", "mlflow", "mlflow")["spec"]["template"]["spec"]["containers"][0]
    assert mlflow["image"] == airflow_image, "MLflow runs from the Airflow image (same pinned mlflow[auth])"
    # The Airflow version the chart is told is the one in the image and in requirements.txt.
    base = re.search(r"^ARG AIRFLOW_IMAGE=apache/airflow:(\S+?)-python", dockerfile, re.M).group(1)
    pin = re.search(r"^apache-airflow==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert values["airflowVersion"] == base == pin
    # The guide builds and pushes both targets under these names.
    guide = GUIDE.read_text()
    assert "docker build --target airflow -t $AR/mlops-airflow:$TAG ." in guide
    assert "docker build --target trainer -t $AR/mlops-trainer:$TAG ." in guide


def test_simple_auth_users_include_the_maintenance_user(values):
    core = values["config"]["core"]
    assert core["auth_manager"].endswith("SimpleAuthManager")
    users = dict(u.split(":") for u in core["simple_auth_manager_users"].split(","))
    assert users["mlops-maintenance"] == "op"
    mount = values["volumeMounts"][0]["mountPath"]
    assert core["simple_auth_manager_passwords_file"].startswith(mount + "/")
    (copy,) = [c for c in values["scheduler"]["extraInitContainers"] if c["name"] == "mlops-auth-passwords"]
    assert core["simple_auth_manager_passwords_file"] in copy["args"][0]


# ------------------------------------------------------------------------------------------ GKE compute classes

def test_compute_classes_match_the_catalogues_spot_pools():
    classes = {c["metadata"]["name"]: c for c in docs(DEPLOY / "gke" / "compute-classes.yaml")}
    spot = {p.gke_compute_class: p for p in CATALOGUE.pools.values() if p.gke_compute_class}
    assert set(classes) == set(spot)
    for name, cc in classes.items():
        assert cc["apiVersion"] == "cloud.google.com/v1" and cc["kind"] == "ComputeClass"
        pool = spot[name]
        first, fallback = cc["spec"]["priorities"]
        assert first["spot"] is True and fallback["spot"] is False, "spot first, then on-demand"
        accelerator = pool.node_selector["cloud.google.com/gke-accelerator"]
        for rule in (first, fallback):
            assert rule["gpu"]["type"] == accelerator and rule["gpu"]["count"] == pool.gpus_per_node, name
        assert cc["spec"]["nodePoolAutoCreation"]["enabled"] is True
