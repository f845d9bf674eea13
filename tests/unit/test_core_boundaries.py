"""The domain core never imports Airflow: it runs in pods without it."""

import ast
import subprocess
import sys

from helpers import ROOT

CORE = ROOT / "include" / "mlops"


def test_core_source_has_no_airflow_import():
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "airflow"]
    assert not offenders


def test_importing_every_core_module_loads_no_airflow():
    modules = [f"mlops.{p.stem}" for p in CORE.glob("*.py") if p.stem != "__init__"]
    code = f"import sys\nfor m in {modules!r}: __import__(m)\nprint(sorted(k for k in sys.modules if k.split('.')[0] == 'airflow'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
