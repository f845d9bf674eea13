"""The alarm rules over long runs of checks: quiet on stable data, firing on persistent drift within the
expected number of checks, and respecting the cooldowns."""

from datetime import date, timedelta

import numpy as np
import pandas as pd

from mlops.drift.alarm import Check, columns_verdict, decide
from mlops.drift.compare import Thresholds
from mlops.drift.profile import build_profile, compare_to_profile

RULES = dict(persistence=2, window=3, cooldown_days=3)
START = date(2026, 3, 1)


def run_checks(bad_days: set[int], days: int, champion_window_last=None, rules=RULES) -> list[int]:
    """Feed `days` daily checks through the rules as the monitor DAG would; returns the days that fired."""
    history, fired = [], []
    for i in range(days):
        check = Check(START + timedelta(days=i), bad=i in bad_days, reasons=("drift",) if i in bad_days else ())
        alarm = decide(check, history, champion_window_last=champion_window_last, **rules)
        history.append(Check(check.day, check.bad, alarmed=alarm.fire, reasons=check.reasons))
        if alarm.fire:
            fired.append(i)
    return fired


def test_one_bad_day_is_not_enough_two_in_three_are():
    assert run_checks({5}, 30) == []
    assert run_checks({5, 7}, 30) == [7]
    assert run_checks({5, 9}, 30) == []  # too far apart for 2 of 3


def test_after_an_alarm_the_retraining_gets_its_cooldown():
    fired = run_checks(set(range(10, 30)), 30)
    assert fired[0] == 11 and all(b - a > RULES["cooldown_days"] for a, b in zip(fired, fired[1:], strict=False))


def test_no_alarm_right_after_the_champion_was_trained():
    window_end = START + timedelta(days=9)  # the champion saw data up to day 9
    # Days 10..12 cool down (they still count as evidence), day 13 is the first that may fire.
    assert run_checks(set(range(10, 20)), 20, champion_window_last=window_end)[0] == 13
    assert run_checks({10, 11}, 20, champion_window_last=window_end) == []


def test_criticality():
    crit = {"temperature": "critical", "store": "ignore"}
    assert columns_verdict(["temperature"], crit, 2)[0] is True
    assert columns_verdict(["store", "price"], crit, 2)[0] is False
    assert columns_verdict(["price", "promo"], crit, 2) == (True, "2 columns drifted: price, promo")


def test_stable_data_over_a_long_run_raises_no_alarm():
    # 120 daily batches drawn from the training distribution: every check goes through the real statistics.
    rng = np.random.default_rng(0)

    def batch(n, shift=0.0):
        return pd.DataFrame({"price": rng.uniform(2, 12, n), "temperature": rng.normal(12 + shift, 6, n),
                             "store": rng.choice(["north", "south", "east", "west"], n)})

    reference = build_profile(batch(6000), {"price": "numeric", "temperature": "numeric", "store": "categorical"})
    history, fired, bad_days = [], [], 0
    for i in range(120):  # as the monitor DAG does: against the champion's stored profile
        results = compare_to_profile(reference, batch(300, shift=8.0 if i >= 100 else 0.0), Thresholds())
        bad, why = columns_verdict([r.column for r in results if r.drifted], {"temperature": "critical"}, 2)
        bad_days += bad and i < 100
        check = Check(START + timedelta(days=i), bad, reasons=(why,))
        alarm = decide(check, history, champion_window_last=START - timedelta(days=1), **RULES)
        history.append(Check(check.day, bad, alarm.fire, check.reasons))
        fired += [i] if alarm.fire else []
    assert bad_days <= 2 and [d for d in fired if d < 100] == []
    assert fired and fired[0] == 101  # drift from day 100: two bad checks in a row


def test_the_checks_that_fired_an_alarm_do_not_fire_it_again():
    # Bad on days 0-2 (the alarm fires on day 2), stable afterwards: a wide window must not re-fire on day 6.
    rules = dict(persistence=3, window=7, cooldown_days=3)
    assert run_checks({0, 1, 2}, 20, rules=rules) == [2]
