"""The training entrypoint: the same command runs as a local subprocess or in a pod.

    python -m mlops.train --spec-json '{...}' --dag-id churn__train --run-id ... \
        --data-interval-end 2026-01-15T00:00:00+00:00 --result-path /airflow/xcom/return.json

It loads the window, calls the author's `train(train_df, params)`, logs everything to MLflow, registers
the model and writes a small JSON result. If an earlier successful run had the same data fingerprint,
spec hash, code version and parameters, it reuses that model instead (a logged cache hit). With
`--trial-json` it runs one trial of a hyperparameter sweep instead (mlops.tuning.trial).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.settings import Settings, get_settings
from mlops.spec import ModelSpec, load_spec, parse_spec
from mlops.trainer_run import (
    DataChangedError,
    RunContext,
    cache_key,
    code_version,
    effective_params,
    load_validated,
    requirements,
    run_tags,
    sweep_tags,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlops.data import WindowData

__all__ = ["DEFAULT_RESULT_PATH", "DataChangedError", "RunContext", "build_arguments", "code_version", "run_training",
           "trainer_environment"]
log = logging.getLogger("mlops.train")
DEFAULT_RESULT_PATH = "/airflow/xcom/return.json"


def build_arguments(spec: ModelSpec, ctx: RunContext, overrides: dict[str, Any], result_path: str) -> list[str]:
    """The entrypoint's arguments; identical for the local subprocess and the pod."""
    args = ["--spec-json", spec.model_dump_json(), "--dag-id", ctx.dag_id, "--run-id", ctx.run_id,
            "--try-number", str(ctx.try_number), "--params-json", json.dumps(overrides, sort_keys=True),
            "--result-path", result_path]
    for flag, value in (("--logical-date", ctx.logical_date), ("--data-interval-start", ctx.data_interval_start),
                        ("--data-interval-end", ctx.data_interval_end), ("--window-last-day", ctx.window_last_day),
                        ("--window-anchor", ctx.window_anchor), ("--expected-fingerprint", ctx.expected_fingerprint)):
        if value:
            args += [flag, value]
    if ctx.sweep:
        args += ["--sweep-json", json.dumps(ctx.sweep, sort_keys=True)]
    return args


def trainer_environment(settings: Settings) -> dict[str, str]:
    """What the trainer needs to find data and tracking; the pod gets the same (secrets excepted)."""
    from mlops.tracking import TELEMETRY_OFF

    env = {
        **TELEMETRY_OFF,
        "MLFLOW_TRACKING_URI": settings.tracking_uri,
        "MLOPS_DATA_ROOT": settings.data_root,
        "MLOPS_ARTIFACT_ROOT": settings.artifact_root,
        "MLOPS_HOME": str(settings.home),
        # The trainer re-checks the spec it is given: it must allow the same trainer packages.
        "MLOPS_TRAINER_PACKAGES": ",".join(settings.trainer_packages),
        "PYTHONUNBUFFERED": "1",
    }
    if settings.tracking_uri.startswith(("http://", "https://")) and settings.storage.artifact_root is None:
        # A tracking server keeps the artifacts in its own store (tracking.experiment_id); the default local
        # folder would put them where only this machine sees them.
        del env["MLOPS_ARTIFACT_ROOT"]
    return env


def run_training(spec: ModelSpec, ctx: RunContext, overrides: dict[str, Any] | None = None,
                 settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or get_settings()
    from mlops import tracking

    tracking.switch_off_telemetry()
    params = effective_params(spec, overrides or {})
    loaded, fingerprint = load_validated(spec, ctx, settings)
    window, frame = loaded.window, loaded.frame
    spec_hash = spec.content_hash()
    code = code_version(spec)
    key = cache_key(fingerprint, spec_hash, code, params)
    log.info("window %s..%s (%s), %d rows, fingerprint %s, cache key %s", window.first_day, window.last_day,
             window.anchored_by, len(frame), fingerprint, key)

    tags = {**run_tags(spec, ctx, loaded, fingerprint, spec_hash, code, settings), tracking.CACHE_KEY: key,
            **sweep_tags(ctx)}
    import mlflow

    client = tracking.client(settings)
    exp_id = tracking.experiment_id(settings, spec.name)
    cached_run, cached_version = tracking.find_cached_training(settings, spec.name, key)
    base = {
        "model": spec.name,
        "fingerprint": fingerprint,
        "spec_hash": spec_hash,
        "code_version": code,
        "window_first_day": window.first_day.isoformat(),
        "window_last_day": window.last_day.isoformat(),
        "data_interval_end": window.end.isoformat(),
        "git_sha": tags[tracking.GIT_SHA],
        "image_digest": tags[tracking.IMAGE_DIGEST],
    }
    result: dict[str, Any]
    if cached_run is not None:
        if cached_version is None:  # find_cached_training returns both or neither
            raise RuntimeError(f"{spec.name}: cached run {cached_run.info.run_id} came without its model version")
        with mlflow.start_run(experiment_id=exp_id, run_name=f"cache hit {ctx.run_id}",
                              tags={**tags, tracking.KIND: "cache_hit", tracking.CACHE_HIT: "true",
                                    tracking.REUSED_RUN: cached_run.info.run_id}) as run:
            pass
        for key in tracking.SWEEP_VERSION_TAGS:  # a sweep that found parameters trained before still links its version
            if key in tags:
                client.set_model_version_tag(spec.name, str(cached_version.version), key, tags[key])
        log.info("cache hit: reusing run %s, model version %s (same data, spec, code and params); "
                 "logged as run %s", cached_run.info.run_id, cached_version.version, run.info.run_id)
        result = {**base, "cache_hit": True, "run_id": cached_run.info.run_id, "cache_run_id": run.info.run_id,
                  "model_version": str(cached_version.version),
                  "model_uri": f"models:/{spec.name}/{cached_version.version}",
                  "metrics": {k: v for k, v in cached_run.data.metrics.items()}}
    else:
        result = {**base, "cache_hit": False, **_train_and_log(spec, loaded, params, tags, exp_id, client)}
    from mlops.evaluate import gather_evidence

    result["evidence"] = gather_evidence(settings, spec, result, loaded)
    return result


def _train_and_log(spec: ModelSpec, loaded: WindowData, params: dict[str, Any], tags: dict[str, str], exp_id: str,
                   client: MlflowClient) -> dict[str, Any]:
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.models import infer_signature

    from mlops import data, tracking
    from mlops.authoring import AuthoringError, resolve, score
    from mlops.drift.profile import build_profile, spec_kinds
    from mlops.metrics import compute_all
    from mlops.packaging import ScoringModel

    ds = spec.dataset
    split = data.split_holdout(spec, loaded)
    features = list(ds.features)
    train_fn = resolve(spec.trainer.function)
    with mlflow.start_run(experiment_id=exp_id, run_name=f"train {tags[tracking.RUN_ID]}",
                          tags={**tags, tracking.KIND: "train"}) as run:
        mlflow.log_params({**{f"hp.{k}": v for k, v in params.items()},
                           "window_days": ds.window.days, "holdout": spec.evaluation.holdout.strategy,
                           "holdout_fraction": spec.evaluation.holdout.fraction,
                           "train_rows": len(split.train), "holdout_rows": len(split.holdout)})
        source = ds.uri.format(data_root=get_settings().data_root.rstrip("/"),
                               date=f"{{{tags[tracking.WINDOW_FIRST]}..{tags[tracking.WINDOW_LAST]}}}")
        window_frame = loaded.frame[ds.columns]
        mlflow.log_input(from_pandas(window_frame, source=source, targets=ds.target,
                                     name=f"{spec.name}-window", digest=tags[tracking.FINGERPRINT]),
                         context="training")
        mlflow.log_input(from_pandas(split.holdout, source=source, targets=ds.target,
                                     name=f"{spec.name}-holdout", digest=data.fingerprint(split.holdout)),
                         context="holdout")
        try:
            model = train_fn(split.train.copy(), dict(params))
        except Exception as exc:
            raise AuthoringError(f"{spec.trainer.function} raised {type(exc).__name__}: {exc}") from exc
        x_holdout = split.holdout[features]
        scores = score(model, x_holdout, ds.task, spec.trainer.predict)
        metrics = compute_all(ds.task, split.holdout[ds.target].to_numpy(), scores)
        mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})  # NaN is not loggable
        mlflow.log_dict(build_profile(split.train, spec_kinds(spec)), tracking.REFERENCE_PROFILE)
        _log_smoke_sample(x_holdout, scores)
        example = x_holdout.head(5)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=ScoringModel(model, ds.task, features, spec.trainer.predict),
            signature=infer_signature(example, scores[:5]),
            input_example=example,
            pip_requirements=requirements(),
            registered_model_name=spec.name,
        )
        version = str(info.registered_model_version)
        for key in (tracking.INTERVAL_START, tracking.INTERVAL_END, tracking.WINDOW_FIRST, tracking.WINDOW_LAST,
                    tracking.FINGERPRINT, tracking.SPEC_HASH, tracking.CODE_VERSION, tracking.DAG_ID,
                    tracking.RUN_ID, tracking.GIT_SHA, *tracking.SWEEP_VERSION_TAGS):
            if key in tags:
                client.set_model_version_tag(spec.name, version, key, tags[key])
        client.set_model_version_tag(spec.name, version, tracking.REFERENCE_PROFILE_URI,
                                     f"runs:/{run.info.run_id}/{tracking.REFERENCE_PROFILE}")
        log.info("trained %s: run %s, version %s, holdout %s", spec.name, run.info.run_id, version, metrics)
        return {"run_id": run.info.run_id, "model_version": version,
                "model_uri": f"models:/{spec.name}/{version}", "metrics": metrics}


def _log_smoke_sample(x_holdout: Any, scores: Any) -> None:
    """Holdout rows with the scores computed here, offline: a deploy's smoke test sends them to the endpoint and
    expects the same scores back (mlops.serving.smoke)."""
    import tempfile

    import mlflow

    from mlops.serving.smoke import SAMPLE_ARTIFACT, sample_frame

    folder, name = SAMPLE_ARTIFACT.rsplit("/", 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        sample_frame(x_holdout, scores).to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=folder)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mlops.train", description="Train one model on its window.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--spec", type=Path, help="path to the model spec YAML")
    src.add_argument("--spec-json", help="the parsed spec as JSON (what the DAG saw)")
    p.add_argument("--dag-id", default="manual")
    p.add_argument("--run-id", default="manual")
    p.add_argument("--logical-date")
    p.add_argument("--data-interval-start")
    p.add_argument("--data-interval-end", help="ISO time; omit to end at the newest partition")
    p.add_argument("--try-number", type=int, default=1)
    p.add_argument("--window-last-day", help="train on the window ending on this day (as validated)")
    p.add_argument("--window-anchor", help="how that window was chosen (recorded as a tag)")
    p.add_argument("--expected-fingerprint", help="fail if the window's content differs from this")
    p.add_argument("--params-json", default="{}", help="hyperparameter overrides as a JSON object")
    p.add_argument("--sweep-json", help="the sweep that chose these parameters (tagged on run and version)")
    p.add_argument("--trial-json", help="run one trial of a sweep instead of training (mlops.tuning.trial)")
    p.add_argument("--result-path", default=get_settings().trainer.result_path)
    return p


def _main(argv: list[str]) -> int:
    """0 with the result written; on failure the exit code and last log line of mlops.failures, which
    tell the operator (local or pod) whether to retry."""
    a = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # MLflow's hints about dataset sources and integer schemas are noise in a trainer's log.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow\..*")
    try:
        spec = load_spec(a.spec) if a.spec else parse_spec(json.loads(a.spec_json))
        ctx = RunContext(a.dag_id, a.run_id, a.logical_date, a.data_interval_start, a.data_interval_end,
                         a.try_number, a.window_last_day, a.window_anchor, a.expected_fingerprint,
                         json.loads(a.sweep_json) if a.sweep_json else None)
        if a.trial_json:
            from mlops.tuning.trial import run_trial

            result = run_trial(spec, ctx, json.loads(a.trial_json))
        else:
            result = run_training(spec, ctx, json.loads(a.params_json))
    except Exception as exc:  # noqa: BLE001 - every failure is classified, none escapes as a bare crash
        from mlops import failures

        failure = failures.classify(exc)
        log.error("training failed (%s). %s.", failure.kind, failure.verdict, exc_info=True)
        failures.report(failure)
        return failure.exit_code
    out = Path(a.result_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result))
    print("MLOPS_RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
