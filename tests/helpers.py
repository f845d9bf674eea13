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
