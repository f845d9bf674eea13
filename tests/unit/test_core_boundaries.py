"""The domain core never imports Airflow (it runs in pods without it), and its modules form no import
cycle: each one imports on its own, and no import inside a function hides a cycle."""

import ast
import subprocess
import sys

from helpers import ROOT

INCLUDE = ROOT / "include"
CORE = INCLUDE / "mlops"


def _module_name(path) -> str:
    parts = list(path.relative_to(INCLUDE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# `python -m` entry points run their command when imported
MODULES = sorted(_module_name(p) for p in CORE.rglob("*.py") if p.stem != "__main__")


def _imports(path) -> set[str]:
    """Every module the file imports, at its top or inside a function (relative imports resolved)."""
    module = _module_name(path)
    package = module if path.stem == "__init__" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}  # `from pkg import module`
    return found


def test_every_core_module_is_found():
    assert {"mlops", "mlops.spec", "mlops.spec.models", "mlops.drift.stats", "mlops.compute"} <= set(MODULES)


def test_core_source_has_no_airflow_import():
    offenders = [f"{p.relative_to(CORE)}: {name}" for p in CORE.rglob("*.py") for name in _imports(p)
                 if name.split(".")[0] == "airflow"]
    assert not offenders


def test_each_core_module_imports_on_its_own_and_loads_no_airflow():
    """A fresh interpreter per module: a cycle shows as an ImportError in whichever module starts it."""
    code = ("import importlib, sys\nimportlib.import_module(sys.argv[1])\n"
            "print(sorted(k for k in sys.modules if k.split('.')[0] == 'airflow'))")
    runs = {m: subprocess.Popen([sys.executable, "-c", code, m], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for m in MODULES}
    failed, airflow = {}, {}
    for module, proc in runs.items():
        out, err = proc.communicate(timeout=120)
        if proc.returncode:
            failed[module] = err.strip().splitlines()[-1:]
        elif out.strip() != "[]":
            airflow[module] = out.strip()
    assert not failed, failed
    assert not airflow, airflow


def test_no_import_cycle_even_through_imports_inside_functions():
    """An import moved into a function to dodge a cycle is still a cycle: the graph counts them all."""
    files = {_module_name(p): p for p in CORE.rglob("*.py")}
    graph = {}
    for module, path in files.items():
        targets = set()
        for name in _imports(path) & set(files):
            targets.add(name)
            # importing a submodule first runs its packages, except the importer's own
            parts = name.split(".")
            targets |= {".".join(parts[:i]) for i in range(1, len(parts))
                        if not (module + ".").startswith(".".join(parts[:i]) + ".")}
        graph[module] = {t for t in targets if not (module + ".").startswith(t + ".")}  # not itself, not its packages
    cycles = []
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(trail[trail.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


def test_every_core_package_is_installed_with_the_distribution():
    """pip installs only the packages pyproject.toml's find rule picks: a subpackage it misses (a folder without
    __init__.py, a name outside its patterns) is missing in the images."""
    import tomllib

    from setuptools import find_packages

    rule = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    found = {name for where in rule["where"]
             for name in find_packages(where=str(ROOT / where), include=rule["include"])}
    packages = {_module_name(p) for p in INCLUDE.rglob("__init__.py")}
    assert packages <= found, (f"{sorted(packages - found)}: not picked by [tool.setuptools.packages.find] "
                               "in pyproject.toml")
