"""A registered version's MLflow model as a local folder: what a model server loads.

The local backend calls it before it starts a server; on a cluster it is the serving pod's init
container, which fills the pod's model volume before the server starts:

    python -m mlops.serving.fetch churn 3 /mnt/models
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path


class NotAModel(RuntimeError):
    """The version's artifacts hold no MLmodel file."""


def download_model(name: str, version: str, target: Path) -> Path:
    """`models:/<name>/<version>` into `target` (kept when already there), through a staging folder so a
    half-finished download is never taken for a model. The tracking URI comes from the environment."""
    import mlflow

    if (target / "MLmodel").is_file():
        return target
    staging = target.with_name(f".{target.name}.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    found = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(staging)))
    if not (found / "MLmodel").is_file():
        inside = [p.parent for p in staging.rglob("MLmodel")]
        if not inside:
            shutil.rmtree(staging, ignore_errors=True)
            raise NotAModel(f"the artifacts of models:/{name}/{version} hold no MLmodel file: it is not an MLflow "
                            "model; deploy a version the platform's trainer registered")
        found = inside[0]
    if (target / "MLmodel").is_file():
        shutil.rmtree(staging, ignore_errors=True)
        return target
    target.mkdir(parents=True, exist_ok=True)
    for item in found.iterdir():  # into target itself: on a cluster it is a mounted volume, not renamable
        shutil.move(str(item), str(target / item.name))
    shutil.rmtree(staging, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m mlops.serving.fetch", description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("version")
    p.add_argument("target", type=Path)
    args = p.parse_args(argv)
    path = download_model(args.model, args.version.lstrip("v"), args.target)
    print(f"models:/{args.model}/{args.version} is in {path}", flush=True)


if __name__ == "__main__":
    main()
