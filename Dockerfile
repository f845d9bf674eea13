# syntax=docker/dockerfile:1
# Two images from one file:
#   docker build --target airflow -t mlops-airflow .   the scheduler / API server / worker image
#   docker build --target trainer -t mlops-trainer .   the training pod image (CUDA base, no Airflow)
#   docker build --target serving -t mlops-serving .   the model server image (the trainer's libraries)

ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

# ---------------------------------------------------------------- Airflow
FROM ${AIRFLOW_IMAGE} AS airflow
ENV MLOPS_PROJECT_ROOT=/opt/mlops \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    AIRFLOW__USAGE_DATA_COLLECTION__ENABLED=False \
    SCARF_ANALYTICS=false \
    DO_NOT_TRACK=true \
    MLFLOW_DISABLE_TELEMETRY=true \
    GX_ANALYTICS_ENABLED=false
# The runtime only: the test and lint tools (requirements-dev.txt) stay out of the image.
COPY --chown=airflow:0 requirements.txt constraints.txt /opt/mlops/
# Workers only train on the CPU (local backend); GPU training runs in the trainer image. The CPU build of
# torch keeps this image small, and satisfies requirements.txt's torch==2.13.0.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install --no-cache-dir -r /opt/mlops/requirements.txt -c /opt/mlops/constraints.txt
COPY --chown=airflow:0 pyproject.toml /opt/mlops/
COPY --chown=airflow:0 include /opt/mlops/include
# The Airflow plugin and provider is the package mlops_airflow, installed with the core (entry points in
# pyproject.toml); Airflow's plugins folder (/opt/airflow/plugins) stays empty.
COPY --chown=airflow:0 plugins /opt/mlops/plugins
RUN pip install --no-cache-dir --no-deps /opt/mlops
COPY --chown=airflow:0 dags /opt/airflow/dags

# ---------------------------------------------------------------- trainer
FROM ${CUDA_IMAGE} AS trainer
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    MLOPS_PROJECT_ROOT=/opt/mlops \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=true
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Distribution packages follow the base image's release; the Python packages are pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates git \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv \
    && groupadd --gid 50000 mlops \
    && useradd --uid 50000 --gid 50000 --create-home mlops
COPY include/trainer-requirements.txt /opt/mlops/include/trainer-requirements.txt
RUN pip install --no-cache-dir -r /opt/mlops/include/trainer-requirements.txt
COPY pyproject.toml /opt/mlops/
COPY include /opt/mlops/include
RUN pip install --no-cache-dir --no-deps /opt/mlops
WORKDIR /opt/mlops
USER 50000:50000
ENTRYPOINT ["python", "-m", "mlops.train"]

# ---------------------------------------------------------------- serving
# The model server for clusters: MLflow's scoring server under uvicorn (mlops.serving.worker, the process the
# local backend runs too) on the trainer image's libraries, so a model is served by what trained it. No Airflow,
# non-root (the trainer's user). The model is a local MLflow model directory at /mnt/models, where KServe's
# storage initializer puts it; /ping and /health are the probes, /invocations the endpoint.
FROM trainer AS serving
ENV __pyfunc_model_path__=/mnt/models \
    MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT=30
EXPOSE 8080
USER 50000:50000
ENTRYPOINT ["python", "-m", "mlops.serving.worker", "--host", "0.0.0.0", "--port", "8080"]

# ---------------------------------------------------------------- kserve-runtime
# KServe's MLflow runtime for the platform's models (serving.backend kserve): MLServer and its MLflow runtime
# on the trainer image's libraries, so the models' pyfunc wrapper (mlops.packaging) loads as it was trained.
# deploy/kserve/runtime.yaml registers it as the ClusterServingRuntime for modelFormat mlflow, protocol v2.
FROM trainer AS kserve-runtime
COPY include/mlserver-requirements.txt /opt/mlops/include/mlserver-requirements.txt
RUN pip install --no-cache-dir -r /opt/mlops/include/mlserver-requirements.txt
ENV MLSERVER_PARALLEL_WORKERS=0 \
    MLSERVER_MODEL_IMPLEMENTATION=mlserver_mlflow.MLflowRuntime
EXPOSE 8080 9000
USER 50000:50000
ENTRYPOINT ["mlserver", "start", "/mnt/models"]
