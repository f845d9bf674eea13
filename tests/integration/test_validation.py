"""Real GX Core validation of training windows: good data passes, each kind of bad data is stopped
with a message that names it."""

import json
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
import yaml

from helpers import EXPECTATIONS, MODELS, load_example
from mlops import synthetic
from mlops.spec import parse_spec
from mlops.validation import ValidationFailed, check_training_window, derived_checks, suite_checks

INTERVAL_END = datetime(2026, 1, 15, tzinfo=timezone.utc)
BAD_DAY = date(2026, 1, 14)
INTERVAL_DAYS = [str(d.date()) for d in pd.date_range("2025-12-25", "2026-01-14")]  # the window INTERVAL_END ends

# What the failure message must say for each injected kind.
EXPECTED = {
    "nulls": "'monthly_charges' has no nulls (nulls)",
    "out_of_range": "'monthly_charges' lies within [0.0, 500.0] (out-of-range values)",
    "dropped_column": "'monthly_charges' missing in 2026-01-14 (also seen as its nulls)",
    "renamed_column": "(renamed or new column) [expect_column_values_to_be_in_set on 'unexpected_columns']: "
                      "2026-01-14: monthly_charges_v2",
    "wrong_type": "'monthly_charges' holds float values (wrong type) [expect_column_values_to_be_in_type_list on "
                  "'monthly_charges']: 2026-01-14: 400 of 400 rows (100.0%) of another type; other days 0",
    "empty_partition": "(empty partition) [expect_column_values_to_be_between on 'rows']: 2026-01-14: 0 rows",
}
# Each problem once: what follows from another (the nulls of a dropped column, the range check of text) is
# folded under it.
EXPECTED_BLOCKING = {
    "nulls": ["expect_column_values_to_not_be_null:monthly_charges"],
    "out_of_range": ["expect_column_values_to_be_between:monthly_charges"],
    "dropped_column": ["expect_column_values_to_be_in_set:missing_columns"],
    "renamed_column": ["expect_column_values_to_be_in_set:missing_columns",
                       "expect_column_values_to_be_in_set:unexpected_columns"],
    "wrong_type": ["expect_column_values_to_be_in_type_list:monthly_charges"],
    "empty_partition": ["expect_column_values_to_be_between:rows"],
}


def churn_spec(features: dict | None = None, **validation):
    """The churn example with some of its validation settings (or feature declarations) changed."""
    data = yaml.safe_load((MODELS / "churn.yaml").read_text())
    data["validation"].update(validation)
    for name, changes in (features or {}).items():
        data["dataset"]["features"][name].update(changes)
    return parse_spec(data, expectations_dir=EXPECTATIONS)


def all_checks(spec, suite_dir=EXPECTATIONS) -> int:
    return len(derived_checks(spec)) + len(suite_checks(suite_dir / f"{spec.validation.suite}.yaml"))


@pytest.fixture
def window(tmp_path, monkeypatch):
    """A clean churn window of its own (21 days of 400 rows ending 2026-01-14) to damage; its partitions by day."""
    root = tmp_path / "data"
    synthetic.generate("churn", date(2025, 12, 24), BAD_DAY, root)
    monkeypatch.setenv("MLOPS_DATA_ROOT", str(root))
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    return lambda day: root / "churn" / f"date={day}" / "part-0.parquet"


def rewrite(path: Path, change) -> None:
    df = pd.read_parquet(path)
    pd.DataFrame(change(df)).to_parquet(path)


def settings():
    from mlops.settings import get_settings

    return get_settings()


def stored_failures(report_path: str) -> list[dict]:
    return json.loads(Path(report_path).read_text())["failures"]


def test_good_window_passes(platform):
    summary = check_training_window(load_example("churn"), platform, INTERVAL_END, "good")
    assert summary["success"] and summary["blocking_failures"] == []
    assert summary["window_last_day"] == "2026-01-14" and summary["rows"] == 21 * 400
    assert summary["evaluated"] >= 15
    assert summary["docs_path"].endswith("index.html") and summary["docs_pages"]


@pytest.mark.parametrize("kind", synthetic.BAD_KINDS)
def test_each_bad_kind_is_stopped_with_a_message_naming_it(kind, tmp_path, monkeypatch):
    root = tmp_path / "data"
    synthetic.generate("churn", date(2025, 12, 20), BAD_DAY, root, bad=kind, bad_date=BAD_DAY)
    monkeypatch.setenv("MLOPS_DATA_ROOT", str(root))
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    from mlops.settings import get_settings

    with pytest.raises(ValidationFailed) as err:
        check_training_window(load_example("churn"), get_settings(), INTERVAL_END, kind)
    message = str(err.value)
    assert message.startswith("churn: data validation failed")
    assert EXPECTED[kind] in message, message
    assert "Full result:" in message
    report = err.value.report
    assert report.result_path and (tmp_path / "home").exists()
    assert report.summary()["blocking_failures"] == EXPECTED_BLOCKING[kind], message
    assert report.evaluated == all_checks(load_example("churn"))  # folded failures were evaluated all the same


def test_warning_expectations_do_not_block(platform, tmp_path, monkeypatch):
    suite_dir = tmp_path / "expectations"
    suite_dir.mkdir()
    (suite_dir / "churn.yaml").write_text(
        "expectations:\n"
        "  - type: expect_column_mean_to_be_between\n"
        "    kwargs: {column: tenure_months, min_value: 1000}\n"
        "    severity: warning\n"
        "    description: tenure is implausibly short\n"
    )
    monkeypatch.setenv("MLOPS_EXPECTATIONS_DIR", str(suite_dir))
    from mlops.settings import get_settings

    summary = check_training_window(load_example("churn"), get_settings(), INTERVAL_END, "warn")
    assert summary["success"]
    assert summary["warnings"] == ["expect_column_mean_to_be_between:tenure_months"]


def test_only_a_late_newest_partition_is_worth_waiting_for(tmp_path, monkeypatch):
    from mlops.settings import get_settings
    from mlops.validation import NewestPartitionMissing

    root = tmp_path / "data"
    synthetic.generate("churn", date(2025, 12, 20), date(2026, 1, 13), root)  # 2026-01-14 not landed yet
    monkeypatch.setenv("MLOPS_DATA_ROOT", str(root))
    with pytest.raises(NewestPartitionMissing, match="missing days 2026-01-14"):
        check_training_window(load_example("churn"), get_settings(), INTERVAL_END, "late")
    (root / "churn" / "date=2026-01-10" / "part-0.parquet").unlink()  # a hole in the past is not late data
    with pytest.raises(ValidationFailed) as err:
        check_training_window(load_example("churn"), get_settings(), INTERVAL_END, "hole")
    assert not isinstance(err.value, NewestPartitionMissing)


def test_a_row_failure_names_its_days_and_the_rate_on_each(window):
    def nulls(df):
        df.loc[:159, "monthly_charges"] = None  # 40% of one day, 1.9% of the window
        return df

    def too_long(df):
        df.loc[:39, "tenure_months"] = 500
        return df

    rewrite(window("2026-01-12"), nulls)
    rewrite(window("2026-01-03"), too_long)
    rewrite(window("2026-01-05"), too_long)
    with pytest.raises(ValidationFailed) as err:
        check_training_window(load_example("churn"), settings(), INTERVAL_END, "days")
    nulls_seen = "2026-01-12: 160 of 400 rows (40.0%) null; other days 0"
    range_seen = ("2026-01-03: 40 of 400 rows (10.0%) out of range; 2026-01-05: 40 of 400 rows (10.0%) out of range; "
                  "other days 0; e.g. [500, 500, 500, 500, 500]")
    assert nulls_seen in str(err.value) and range_seen in str(err.value), str(err.value)
    by_check = {f.check: f for f in err.value.report.blocking}
    assert by_check["expect_column_values_to_not_be_null"].observed == nulls_seen
    assert by_check["expect_column_values_to_be_between"].observed == range_seen
    stored = {f["check"]: f for f in stored_failures(err.value.report.result_path)}
    assert stored["expect_column_values_to_not_be_null"]["observed"] == nulls_seen
    assert stored["expect_column_values_to_not_be_null"]["days"] == [
        {"day": "2026-01-12", "unexpected": 160, "rows": 400, "percent": 40.0}]
    assert [d["day"] for d in stored["expect_column_values_to_be_between"]["days"]] == ["2026-01-03", "2026-01-05"]


def test_a_column_missing_from_one_partition_is_reported_once_at_its_cause(window):
    rewrite(window("2026-01-12"), lambda df: df.drop(columns=["tenure_months"]))
    with pytest.raises(ValidationFailed) as err:
        check_training_window(load_example("churn"), settings(), INTERVAL_END, "gap")
    report = err.value.report
    (problem,) = report.blocking
    assert problem.column == "missing_columns"
    assert problem.observed == "'tenure_months' missing in 2026-01-12 (also seen as its nulls)"
    (nulls,) = problem.folded
    assert (nulls.check, nulls.column) == ("expect_column_values_to_not_be_null", "tenure_months")
    assert nulls.observed == "2026-01-12: 400 of 400 rows (100.0%) null; other days 0"
    assert report.evaluated == all_checks(load_example("churn"))
    assert f"1 blocking expectation(s) of {report.evaluated} failed (1 more follow from them" in str(err.value)
    (stored,) = stored_failures(report.result_path)
    assert [f["check"] for f in stored["folded"]] == ["expect_column_values_to_not_be_null"]


def test_an_int_column_with_nulls_is_not_also_of_the_wrong_type(window):
    def nulls(df):
        df.loc[:39, "tenure_months"] = None  # pandas keeps the column as float64
        return df

    rewrite(window("2026-01-12"), nulls)
    with pytest.raises(ValidationFailed) as err:
        check_training_window(load_example("churn"), settings(), INTERVAL_END, "int-nulls")
    assert err.value.report.summary()["blocking_failures"] == ["expect_column_values_to_not_be_null:tenure_months"]
    # Declared nullable, the same data is valid: nulls are allowed and the values are ints.
    summary = check_training_window(churn_spec({"tenure_months": {"nullable": True}}), settings(), INTERVAL_END,
                                    "nullable-int")
    assert summary["success"] and summary["warnings"] == [], summary


def test_a_folded_failure_blocks_when_any_part_of_it_blocks(window, tmp_path, monkeypatch):
    suites = tmp_path / "expectations"
    suites.mkdir()
    (suites / "churn.yaml").write_text(
        "expectations:\n"
        "  - type: expect_column_values_to_not_be_null\n"
        "    kwargs: {column: tenure_months, mostly: 0.99}\n"  # not the derived check's twin: GX keeps one
        "    severity: blocking\n"
        "    description: tenure is nearly always known (nulls)\n"
    )
    rewrite(window("2026-01-12"), lambda df: df.drop(columns=["tenure_months"]))
    warned = churn_spec(severity="warning", suite=None)  # the derived checks only warn
    summary = check_training_window(warned, settings(), INTERVAL_END, "warned-gap")
    assert summary["success"] and summary["warnings"] == ["expect_column_values_to_be_in_set:missing_columns"]

    monkeypatch.setenv("MLOPS_EXPECTATIONS_DIR", str(suites))
    with pytest.raises(ValidationFailed) as err:  # ... but the suite's own null check blocks
        check_training_window(churn_spec(severity="warning"), settings(), INTERVAL_END, "blocked-gap")
    (problem,) = err.value.report.blocking
    assert (problem.column, problem.severity) == ("missing_columns", "warning")
    assert sorted(f.severity for f in problem.folded) == ["blocking", "warning"]
    assert err.value.report.warnings == []


def test_repeated_rows_warn_by_default_and_block_when_the_spec_asks(window):
    for day in INTERVAL_DAYS:
        rewrite(window(day), lambda df: pd.concat([df] * 5, ignore_index=True))
    seen = ("42000 of 42000 rows (100.0%) duplicated, on 21 of 21 days; worst: 2025-12-25: 2000 of 2000 rows "
            "(100.0%); 2025-12-26: 2000 of 2000 rows (100.0%)")
    summary = check_training_window(load_example("churn"), settings(), INTERVAL_END, "repeated")
    assert summary["success"] and summary["warnings"] == ["expect_compound_columns_to_be_unique:-"]
    (stored,) = stored_failures(summary["result_path"])
    assert stored["severity"] == "warning" and stored["observed"].startswith(seen), stored["observed"]
    assert len(stored["days"]) == 21

    with pytest.raises(ValidationFailed) as err:
        check_training_window(churn_spec(duplicates={"severity": "blocking"}), settings(), INTERVAL_END, "blocked")
    assert "at most 1.0% of rows repeat another row (duplicate rows)" in str(err.value)
    assert seen in str(err.value)


def test_a_partition_landed_twice_is_named_and_a_tolerated_share_passes(window):
    window("2026-01-12").write_bytes(window("2026-01-13").read_bytes())  # 800 of 8400 rows (9.5%) repeat
    summary = check_training_window(load_example("churn"), settings(), INTERVAL_END, "twice")
    (stored,) = stored_failures(summary["result_path"])
    # Synthetic rows also coincide now and then (a few per day, well under the default 1%): the copy leads.
    assert "duplicated, on " in stored["observed"]
    assert "worst: 2026-01-12: 400 of 400 rows (100.0%); 2026-01-13: 400 of 400 rows (100.0%)" in stored["observed"]
    twice = [d for d in stored["days"] if d["percent"] == 100.0]
    assert [d["day"] for d in twice] == ["2026-01-12", "2026-01-13"], stored["days"]
    tolerant = churn_spec(duplicates={"severity": "blocking", "max_fraction": 0.1})
    summary = check_training_window(tolerant, settings(), INTERVAL_END, "tolerated")
    assert summary["success"] and summary["warnings"] == []
    # A key of its own: three contracts cannot tell 8400 rows apart.
    by_contract = churn_spec(duplicates={"severity": "blocking", "key": ["contract"], "max_fraction": 0.1})
    with pytest.raises(ValidationFailed, match=r"repeat another row on \(contract\) \(duplicate rows\)"):
        check_training_window(by_contract, settings(), INTERVAL_END, "by-contract")
