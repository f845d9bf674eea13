"""`python -m mlops.drift` as a user calls it: verdicts, formats, exit codes, and one-line errors."""

import json
import os
import subprocess
import sys
from datetime import date

import numpy as np
import pandas as pd
import pytest

from mlops import synthetic
from mlops.drift.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    synthetic.generate_partition("demand", date(2026, 1, 5), seed=0).to_parquet(root / "ref.parquet")
    synthetic.generate_partition("demand", date(2026, 1, 12), seed=0).to_csv(root / "same.csv", index=False)
    synthetic.generate_partition("demand", date(2026, 1, 12), seed=0,
                                 drift_from=date(2026, 1, 10)).to_parquet(root / "drifted.parquet")
    return root


def run(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_stable_data_exits_0_and_says_no_drift(files, capsys):
    code, out, _ = run(capsys, "--reference", files / "ref.parquet", "--current", files / "same.csv",
                       "--columns", "price", "temperature", "store", "--fail-on-drift")
    assert code == 0 and out.strip().endswith("overall: no drift")
    assert "temperature" in out and "numeric" in out and "categorical" in out


def test_drift_json_and_fail_on_drift(files, capsys):
    args = ["--reference", files / "ref.parquet", "--current", files / "drifted.parquet", "--format", "json"]
    code, out, _ = run(capsys, *args)
    report = json.loads(out)
    assert code == 0 and report["drifted"] is True and "temperature" in report["drifted_columns"]
    temperature = next(c for c in report["columns"] if c["column"] == "temperature")
    assert temperature["kind"] == "numeric" and temperature["drifted"] is True
    assert set(temperature["statistics"]) >= {"psi", "ks_statistic", "ks_pvalue", "wasserstein_normalised",
                                              "missing_rate_change"}
    assert run(capsys, *args, "--fail-on-drift")[0] == 1


@pytest.mark.parametrize("make, message", [
    (lambda d: ("ref.parquet", "missing.csv"), "missing.csv: no such file"),
    (lambda d: ("ref.parquet", "other-columns.csv"), "column 'price' is missing from the current data"),
    (lambda d: ("ref.parquet", "empty.csv"), "the current data has no rows"),
    (lambda d: ("ref.parquet", "text-prices.csv"), "column 'price' is numeric on one side but the current data holds "
                                                    "non-numeric values (e.g. '3.10 EUR')"),
    (lambda d: ("ref.parquet", "data.txt"), "unknown format '.txt'"),
])
def test_bad_input_exits_2_with_one_line(files, capsys, make, message):
    ref = pd.read_parquet(files / "ref.parquet")
    ref.drop(columns=["price"]).to_csv(files / "other-columns.csv", index=False)
    ref.iloc[0:0].to_csv(files / "empty.csv", index=False)
    prices = [f"{p:.2f} EUR" for p in [3.1] + list(ref.price[1:])]
    ref.assign(price=prices).to_csv(files / "text-prices.csv", index=False)
    (files / "data.txt").write_text("x\n1\n")
    reference, current = make(files)
    code, out, err = run(capsys, "--reference", files / reference, "--current", files / current)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err


def test_module_entry_point(files):
    out = subprocess.run([sys.executable, "-m", "mlops.drift", "--reference", str(files / "ref.parquet"),
                          "--current", str(files / "drifted.parquet"), "--fail-on-drift"],
                         capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert out.returncode == 1 and "overall: DRIFT in" in out.stdout


def imported_modules(stderr: str) -> set[str]:
    """Module names from `python -X importtime` output ("import time: self | cumulative | name")."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")
            and "|" in line} - {"package"}


def test_the_cli_computes_asymptotic_p_values_without_importing_scipy(tmp_path):
    """scipy.stats costs most of a second to import; on samples past the exact p-value's size the CLI gets
    the same p-values without it (tests/unit/test_drift_kolmogorov.py holds them to scipy)."""
    from scipy import stats as sps

    rng = np.random.default_rng(11)
    n, m = 12_000, 11_000  # past stats.EXACT_KS_MAX_N: the Kolmogorov distribution's p-value
    reference = pd.DataFrame({"x": rng.normal(size=n), "y": rng.gamma(2, 2, n), "s": rng.choice(list("abc"), n)})
    current = pd.DataFrame({"x": rng.normal(0.01, 1, m), "y": rng.gamma(2, 2, m) + 0.05,
                            "s": rng.choice(list("abc"), m)})
    reference.to_parquet(tmp_path / "ref.parquet")
    current.to_parquet(tmp_path / "cur.parquet")
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "mlops.drift", "--reference",
                          str(tmp_path / "ref.parquet"), "--current", str(tmp_path / "cur.parquet"),
                          "--format", "json"],
                         capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    modules = imported_modules(out.stderr)
    assert "mlops.drift.stats" in modules  # the import log is read right
    assert not {name for name in modules if name == "scipy" or name.startswith("scipy.")}
    report = json.loads(out.stdout)
    for name in ("x", "y"):
        ours = next(c for c in report["columns"] if c["column"] == name)["statistics"]
        expected = sps.ks_2samp(reference[name], current[name])
        assert 1e-6 < expected.pvalue and ours["ks_pvalue"] == pytest.approx(expected.pvalue, rel=1e-5, abs=1e-7)
