"""Real GX Core validation of training windows: good data passes, each kind of bad data is stopped
with a message that names it."""

from datetime import date, datetime, timezone

import pytest

from helpers import load_example
from mlops import synthetic
from mlops.validation import ValidationFailed, check_training_window

INTERVAL_END = datetime(2026, 1, 15, tzinfo=timezone.utc)
BAD_DAY = date(2026, 1, 14)

# What the failure message must say for each injected kind.
EXPECTED = {
    "nulls": "'monthly_charges' has no nulls (nulls)",
    "out_of_range": "'monthly_charges' lies within [0.0, 500.0] (out-of-range values)",
    "dropped_column": "2026-01-14: monthly_charges",
    "renamed_column": "(renamed or new column) [expect_column_values_to_be_in_set on 'unexpected_columns']: 2026-01-14: monthly_charges_v2",
    "wrong_type": "'monthly_charges' holds float values (wrong type)",
    "empty_partition": "(empty partition) [expect_column_values_to_be_between on 'rows']: 2026-01-14: 0 rows",
}


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
    assert err.value.report.result_path and (tmp_path / "home").exists()


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
