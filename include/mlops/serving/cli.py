"""Online endpoints from a shell.

    python -m mlops.serving serve                  # serve the deployed versions in the foreground (Ctrl-C stops)
    python -m mlops.serving status                 # every served model: deployed, champion, endpoint, last rollout
    python -m mlops.serving url churn              # the model's stable address
    python -m mlops.serving predict churn          # score 3 rows of the newest partition, print the answer
    python -m mlops.serving predict churn --json '[{"tenure_months": 3, ...}]'
    python -m mlops.serving stop                   # stop the local supervisor and its servers
    python -m mlops.serving manifests churn 3      # the cluster objects a deploy of v3 applies (kubernetes, kserve)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from mlops.settings import Settings, get_settings


def _served_specs(settings: Settings, names: list[str] | None = None) -> list[Any]:
    from mlops.registry import load_valid_specs

    specs = [s for s in load_valid_specs(settings, names or None) if s.serving is not None]
    if names and len(specs) < len(names):
        missing = sorted(set(names) - {s.name for s in specs})
        raise SystemExit(f"{', '.join(missing)}: no serving section in the spec; add one to serve the model online")
    return specs


def _supervise(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.serving import supervisor

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    supervisor.run(Path(args.dir or settings.serving.dir), args.host or settings.serving.host)
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    """The supervisor in this process, the deployed version of each served model started on it."""
    from mlops.serving import control, supervisor
    from mlops.serving.local import restore

    root = Path(settings.serving.dir)
    running = control.find(root)
    if running is not None:
        print(f"a serving supervisor already runs (pid {running.pid}, started by a deploy run); its endpoints:",
              file=sys.stderr)
        _print_status(settings, _served_specs(settings, args.models))
        print("stop it first (`python -m mlops.serving stop`) to serve in the foreground", file=sys.stderr)
        return 1
    specs = _served_specs(settings, args.models)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def start_deployed(_sup: Any) -> None:
        for spec in specs:
            try:
                print(restore(settings, spec), flush=True)
            except Exception as exc:  # noqa: BLE001 - one model's problem must not stop the others
                print(f"{spec.name}: not served: {exc}", file=sys.stderr, flush=True)
        print("serving until Ctrl-C; try:  python -m mlops.serving predict "
              f"{specs[0].name if specs else '<model>'}", flush=True)

    if not specs:
        print("no model spec has a serving section; nothing to serve", file=sys.stderr)
        return 1
    supervisor.run(root, settings.serving.host, on_ready=start_deployed)
    print("stopped every server", flush=True)
    return 0


def _print_status(settings: Settings, specs: list[Any]) -> None:
    from mlops.registry import format_table
    from mlops.serving.status import model_status

    rows = [model_status(settings, spec) for spec in specs]
    headers = {"model": "model", "deployed": "deployed", "champion": "champion", "endpoint": "endpoint",
               "serving": "serving", "ready": "replicas ready", "last_rollout": "last rollout"}
    print(format_table([{k: r.get(k, "-") for k in headers} for r in rows], headers))


def _in_cluster(settings: Settings, spec: Any) -> int | None:
    """A cluster backend's model is not reachable from here: say where it is and how to reach it."""
    from mlops.serving.status import model_status

    if spec.serving.backend == "local":
        return None
    row = model_status(settings, spec)
    ns = settings.kubernetes.namespace
    from mlops.serving import kserve, manifests

    service = manifests.service_name(spec) if spec.serving.backend == "kubernetes" else kserve.isvc_name(spec)
    target = f"svc/{service} 8080:80"
    print(f"{spec.name} is served by the {spec.serving.backend} backend in the cluster: {row['endpoint']} "
          f"({row['deployed']}). From outside the cluster: kubectl -n {ns} port-forward {target}", file=sys.stderr)
    return 1


def _predict(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.serving import endpoint
    from mlops.serving.status import endpoint_of

    (spec,) = _served_specs(settings, [args.model])
    elsewhere = _in_cluster(settings, spec)
    if elsewhere is not None:
        return elsewhere
    url = endpoint_of(settings, spec)
    if url is None:
        print(f"{spec.name} is not served here: run its deploy DAG ({spec.deploy_dag_id}) or `make serve`",
              file=sys.stderr)
        return 1
    frame = _rows(settings, spec, args)
    answer = endpoint.invoke(endpoint.session(), url, endpoint.frame_body(frame), spec.serving.timeouts.request_seconds)
    if not answer.ok:
        print(f"{spec.name}: the request to {url}/invocations failed: {endpoint.describe(answer)}", file=sys.stderr)
        return 1
    print(f"POST {url}/invocations -> {spec.name} v{answer.version} in {answer.seconds * 1000:.1f} ms")
    for row, score in zip(frame.to_dict(orient="records"), answer.scores, strict=True):
        print(f"  {json.dumps(row, default=str)} -> {score:.6g}")
    return 0


def _rows(settings: Settings, spec: Any, args: argparse.Namespace) -> Any:
    import pandas as pd

    from mlops import data, scoring

    features = list(spec.dataset.features)
    if args.json:
        rows = json.loads(args.json)
        frame = pd.DataFrame(rows if isinstance(rows, list) else [rows])
        missing = [c for c in features if c not in frame.columns]
        if missing:
            raise SystemExit(f"--json lacks the feature(s) {missing}; {spec.name} takes {features}")
        return frame[features]
    day = data.newest_partition_day(spec, settings.data_root)
    if day is None:
        raise SystemExit(f"{spec.name}: no partition to take rows from; pass them with --json")
    return scoring.read_partition(spec, settings, day)[features].head(args.rows)


def _url(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.serving.status import endpoint_of

    (spec,) = _served_specs(settings, [args.model])
    elsewhere = _in_cluster(settings, spec)
    if elsewhere is not None:
        return elsewhere
    url = endpoint_of(settings, spec)
    if url is None:
        print(f"{spec.name} is not served here", file=sys.stderr)
        return 1
    print(url)
    return 0


def _manifests(args: argparse.Namespace, settings: Settings) -> int:
    """What a deploy of the version applies, as YAML, without a cluster (the rollout id is a placeholder)."""
    import yaml

    from mlops.compute import catalogue_path, load_catalogue
    from mlops.serving import kserve, manifests

    (spec,) = _served_specs(settings, [args.model])
    if spec.serving.backend == "local":
        print(f"{spec.name} is served by the local backend: it applies nothing to a cluster", file=sys.stderr)
        return 1
    catalogue = load_catalogue(catalogue_path(settings.compute_dir))
    version, rollout = args.version.lstrip("v"), "0000000000ab"
    ns = settings.kubernetes.namespace
    if spec.serving.backend == "kubernetes":
        objects = manifests.rollout_manifests(spec, settings, catalogue, ns, version, rollout)
    else:
        from mlops import tracking

        uri = kserve.storage_uri(str(tracking.client(settings).get_model_version_download_uri(spec.name, version)),
                                 settings.serving.kserve_artifact_root)
        served = kserve.predictor(spec, settings, catalogue, version, rollout, uri, serving=True)
        objects = [kserve.serverless_service(spec, ns, served) if spec.serving.kserve_mode == "Serverless"
                   else kserve.inference_service(spec, ns, served)]
    plain = json.loads(json.dumps(objects))  # no shared dicts, so no YAML anchors in what people read
    print(yaml.safe_dump_all(plain, sort_keys=False), end="")
    return 0


def _stop(args: argparse.Namespace, settings: Settings) -> int:
    from mlops.serving import control

    print("stopped the serving supervisor and its servers" if control.stop(Path(settings.serving.dir))
          else "no serving supervisor runs")
    return 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m mlops.serving", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("supervise", help="run the local supervisor in the foreground (deploys start it themselves)")
    s.add_argument("--dir")
    s.add_argument("--host")
    v = sub.add_parser("serve", help="serve the deployed versions in the foreground until Ctrl-C")
    v.add_argument("models", nargs="*")
    st = sub.add_parser("status", help="deployed version, endpoint and last rollout of every served model")
    st.add_argument("models", nargs="*")
    u = sub.add_parser("url", help="print a model's endpoint")
    u.add_argument("model")
    r = sub.add_parser("predict", help="send rows to a model's endpoint and print the answer")
    r.add_argument("model")
    r.add_argument("--json", help="one row (an object) or a list of rows")
    r.add_argument("--rows", type=int, default=3, help="without --json: this many rows of the newest partition")
    sub.add_parser("stop", help="stop the local supervisor and every server it runs")
    m = sub.add_parser("manifests", help="print the cluster objects a deploy of a version applies")
    m.add_argument("model")
    m.add_argument("version")
    args = p.parse_args(argv)
    settings = get_settings()
    if args.command == "status":
        _print_status(settings, _served_specs(settings, args.models))
        return 0
    handlers = {"supervise": _supervise, "serve": _serve, "predict": _predict, "url": _url, "stop": _stop,
                "manifests": _manifests}
    return int(handlers[args.command](args, settings))

