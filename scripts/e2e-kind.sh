#!/usr/bin/env bash
# The churn training DAG on a real Kubernetes cluster, through the `kubernetes` backend: validation in
# Airflow, training in a pod of the trainer image, tracking on an MLflow server, promotion back in Airflow;
# then churn__deploy on the `kubernetes` serving backend (the serving image, the mlops-serving Role), a
# request through `kubectl port-forward`, and nothing of the platform left behind.
#
# For people with a cluster; CI has none, so CI does not run this. Needs docker, kind and kubectl on PATH
# and `make install` done. Run from the repository root:
#     scripts/e2e-kind.sh            # creates (and at the end deletes) a kind cluster
#     KEEP_CLUSTER=1 scripts/e2e-kind.sh
# Against another cluster: skip the kind steps (USE_CURRENT_CONTEXT=1) and make sure its nodes can reach
# this machine's MLflow and data ports, and that the trainer image is pullable there (TRAINER_IMAGE).
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${CLUSTER:-mlops-e2e}
TRAINER_IMAGE=${TRAINER_IMAGE:-mlops-trainer:e2e}
SERVING_IMAGE=${SERVING_IMAGE:-mlops-serving:e2e}
MLFLOW_PORT=${MLFLOW_PORT:-5055}
DATA_PORT=${DATA_PORT:-8055}
WORK=$PWD/.local/e2e
BIN=$PWD/.venv/bin
mkdir -p "$WORK"

export MLFLOW_DISABLE_TELEMETRY=true GX_ANALYTICS_ENABLED=false DO_NOT_TRACK=true SCARF_ANALYTICS=false
export AIRFLOW__USAGE_DATA_COLLECTION__ENABLED=False AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW_HOME=$WORK/airflow AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$WORK/airflow/airflow.db
export AIRFLOW__CORE__DAGS_FOLDER=$PWD/dags AIRFLOW__CORE__PLUGINS_FOLDER=$PWD/plugins PYTHONPATH=$PWD/plugins

pids=()
finish() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -z "${USE_CURRENT_CONTEXT:-}" ] && [ -z "${KEEP_CLUSTER:-}" ]; then kind delete cluster --name "$CLUSTER"; fi
}
trap finish EXIT

if [ -z "${USE_CURRENT_CONTEXT:-}" ]; then
  echo "--- kind cluster '$CLUSTER' with one node labelled like the catalogue's cpu pool"
  kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --config - <<'KIND'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    labels: {cloud.google.com/gke-nodepool: cpu}
KIND
  echo "--- trainer and serving images"
  docker build --target trainer -t "$TRAINER_IMAGE" .
  docker build --target serving -t "$SERVING_IMAGE" .
  kind load docker-image "$TRAINER_IMAGE" --name "$CLUSTER"
  kind load docker-image "$SERVING_IMAGE" --name "$CLUSTER"
  HOST_IP=$(docker network inspect kind -f '{{(index .IPAM.Config 0).Gateway}}')
  export MLOPS_IMAGE_PULL_POLICY=Never
else
  HOST_IP=${HOST_IP:?set HOST_IP to this machine's address as the cluster's nodes see it}
fi

echo "--- MLflow server on :$MLFLOW_PORT and the sample data over HTTP on :$DATA_PORT"
"$BIN/mlflow" server --backend-store-uri "sqlite:///$WORK/mlflow.db" --artifacts-destination "$WORK/artifacts" \
  --serve-artifacts --host 0.0.0.0 --port "$MLFLOW_PORT" > "$WORK/mlflow.log" 2>&1 &
pids+=($!)
"$BIN/python" -m mlops.synthetic --dataset churn --start 2025-11-15 --end 2026-01-15 --out "$WORK/data"
"$BIN/python" -m http.server "$DATA_PORT" --bind 0.0.0.0 --directory "$WORK/data" > "$WORK/data.log" 2>&1 &
pids+=($!)
for _ in $(seq 60); do curl -fs "http://127.0.0.1:$MLFLOW_PORT/health" >/dev/null && break; sleep 1; done

echo "--- namespace, tracking Secret and service account"
kubectl create namespace mlops --dry-run=client -o yaml | kubectl apply -f -
kubectl -n mlops create secret generic mlops-tracking \
  --from-literal=MLFLOW_TRACKING_URI="http://$HOST_IP:$MLFLOW_PORT" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n mlops create serviceaccount mlops-trainer --dry-run=client -o yaml | kubectl apply -f -
kubectl -n mlops create serviceaccount mlops-serving --dry-run=client -o yaml | kubectl apply -f -

echo "--- churn__train for 2026-01-15 with MLOPS_COMPUTE_BACKEND=kubernetes"
export MLOPS_COMPUTE_BACKEND=kubernetes MLOPS_HOME=$WORK MLOPS_DATA_ROOT=$WORK/data
export MLOPS_POD_DATA_ROOT="http://$HOST_IP:$DATA_PORT" MLFLOW_TRACKING_URI="http://127.0.0.1:$MLFLOW_PORT"
export MLOPS_TRAINER_IMAGE=$TRAINER_IMAGE MLOPS_K8S_NAMESPACE=mlops
export AIRFLOW_CONN_KUBERNETES_DEFAULT="{\"conn_type\": \"kubernetes\", \"extra\": {\"namespace\": \"mlops\", \"kube_config_path\": \"${KUBECONFIG:-$HOME/.kube/config}\"}}"
mkdir -p "$AIRFLOW_HOME" && "$BIN/airflow" db migrate > "$WORK/db-migrate.log" 2>&1
"$BIN/python" -m tools.demo --models churn --dates 2026-01-15 --verbose

echo "--- churn__deploy on the kubernetes serving backend (the champion, through readiness, smoke and bake)"
mkdir -p "$WORK/models"
"$BIN/python" - "$WORK/models/churn.yaml" <<'PY'
import sys, yaml
spec = yaml.safe_load(open("include/models/churn.yaml"))
spec["serving"] = {**spec.get("serving", {}), "backend": "kubernetes", "replicas": 2}
yaml.safe_dump(spec, open(sys.argv[1], "w"), sort_keys=False)
PY
export MLOPS_MODELS_DIR=$WORK/models MLOPS_SERVING_IMAGE=$SERVING_IMAGE
"$BIN/airflow" dags test churn__deploy > "$WORK/deploy.log" 2>&1 || { tail -50 "$WORK/deploy.log"; exit 1; }
kubectl -n mlops rollout status deployment -l mlops.airflow/model=churn --timeout=120s
kubectl -n mlops port-forward svc/churn-serving 18080:80 > "$WORK/port-forward.log" 2>&1 &
pids+=($!)
sleep 3
curl -fsS -i "http://127.0.0.1:18080/invocations" -H 'Content-Type: application/json' \
  -d '{"dataframe_records": [{"tenure_months": 3, "monthly_charges": 80.5, "contract": "month-to-month", "support_calls": 4}]}'
echo

echo "--- no training pod of this platform is left behind"
left=$(kubectl -n mlops get pods -l app.kubernetes.io/managed-by=mlops-airflow -o name)
if [ -n "$left" ]; then echo "pods left behind: $left" >&2; exit 1; fi
echo "e2e on a real cluster: OK"
