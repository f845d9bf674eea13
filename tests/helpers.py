"""Shared test helpers (no side effects on import; the environment is set in conftest.py)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "include" / "models"
EXPECTATIONS = ROOT / "include" / "expectations"

# The days the sample data covers.
DATA_START = date(2025, 12, 1)
DATA_END = date(2026, 1, 20)


def load_example(name: str):
    from mlops.spec import load_spec

    return load_spec(MODELS / f"{name}.yaml", EXPECTATIONS)


def only_model(tmp_path: Path, monkeypatch, spec: dict, trainer_module: str) -> None:
    """`spec` as the only model of the DAG folder, its trainer importable from tests/ in every process the tests
    start (the local subprocess, the warm runner, the emulated pod all inherit PYTHONPATH)."""
    import os

    import yaml

    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    (models / f"{spec['name']}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    monkeypatch.setenv("MLOPS_MODELS_DIR", str(models))
    monkeypatch.setenv("MLOPS_TRAINER_PACKAGES", f"trainers,{trainer_module}")
    here = str(Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])))
