"""validation.duplicates: what the spec accepts, its defaults, and the clear errors for the rest."""

import pytest
import yaml

from helpers import MODELS
from mlops.spec import SpecError, parse_spec
from mlops.validation import derived_checks


def churn(**duplicates):
    data = yaml.safe_load((MODELS / "churn.yaml").read_text())
    if duplicates:
        data["validation"]["duplicates"] = duplicates
    return parse_spec(data)


def duplicates_check(spec):
    (check,) = [c for c in derived_checks(spec) if c.description.endswith("(duplicate rows)")]
    return check


def test_by_default_a_repeated_row_of_all_declared_columns_warns():
    check = duplicates_check(churn())
    assert (check.type, check.severity) == ("expect_compound_columns_to_be_unique", "warning")
    assert check.kwargs == {"column_list": ["tenure_months", "monthly_charges", "contract", "support_calls", "churned"],
                            "mostly": 0.99}


def test_a_key_and_a_share_of_the_spec_are_what_gx_checks():
    check = duplicates_check(churn(severity="blocking", key=["tenure_months", "contract"], max_fraction=0))
    assert check.severity == "blocking"
    assert check.kwargs == {"column_list": ["tenure_months", "contract"], "mostly": 1.0}
    assert check.description == "no row repeats another row on (tenure_months, contract) (duplicate rows)"
    # GX's compound expectation needs two columns; one column is its own expectation.
    one = duplicates_check(churn(key=["contract"]))
    assert (one.type, one.kwargs) == ("expect_column_values_to_be_unique", {"column": "contract", "mostly": 0.99})


@pytest.mark.parametrize("duplicates, problem", [
    ({"key": ["customer_id"]}, "validation.duplicates.key: 'customer_id' is not a declared column (tenure_months, "
                               "monthly_charges, contract, support_calls, churned); fix the name"),
    ({"key": ["contract", "contract"]}, "listed more than once: contract; list each column once"),
    ({"key": []}, "validation.duplicates.key"),
    ({"max_fraction": 1.5}, "validation.duplicates.max_fraction"),
    ({"severity": "off"}, "validation.duplicates.severity"),
    ({"columns": ["contract"]}, "validation.duplicates.columns"),
])
def test_bad_settings_are_named_with_their_fix(duplicates, problem):
    with pytest.raises(SpecError) as err:
        churn(**duplicates)
    assert problem in str(err.value), str(err.value)
    assert len(err.value.problems) == 1
