"""When a monitoring check asks for retraining: the alarm rules, as a pure function over check history.

* A check is *bad* when a critical column drifted, when at least `min_normal_columns` normal columns
  drifted together (ignored columns never count), or when the model's quality on labelled data fell more
  than `quality.max_degradation` below what it scored at training.
* Persistence: the alarm needs `persistence` bad checks among the last `window` checks (the current one
  included); one noisy day is not enough.
* Only checks of data after the champion's training window count, and no alarm fires within
  `cooldown_days` of its end (checks from those days still count as evidence): a model just retrained
  gets time to prove itself.
* Once the alarm fired, it does not fire again within `cooldown_days` (the retraining it asked for is
  under way, or was judged not better, and shouting daily will not change that), and the checks that
  fired it are spent: only checks after it count towards the next alarm.

Days are data days (the partition a check looked at), not wall-clock days, so backfills and replays
decide the same way as live runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta


@dataclass(frozen=True)
class Check:
    day: date
    bad: bool
    alarmed: bool = False
    reasons: tuple[str, ...] = ()


@dataclass
class Alarm:
    fire: bool
    reasons: list[str] = field(default_factory=list)  # why it fires, or why it stays quiet


def columns_verdict(drifted_columns: list[str], criticality: Mapping[str, str],
                    min_normal_columns: int) -> tuple[bool, str]:
    """Whether the drifted columns make a bad check, and why."""
    critical = [c for c in drifted_columns if criticality.get(c, "normal") == "critical"]
    normal = [c for c in drifted_columns if criticality.get(c, "normal") == "normal"]
    if critical:
        return True, f"critical column(s) drifted: {', '.join(critical)}"
    if len(normal) >= min_normal_columns:
        return True, f"{len(normal)} columns drifted: {', '.join(normal)}"
    if normal:
        return False, f"{len(normal)} column(s) drifted ({', '.join(normal)}), fewer than {min_normal_columns}"
    return False, "no column drifted"


def decide(current: Check, history: list[Check], *, persistence: int, window: int, cooldown_days: int,
           champion_window_last: date | None) -> Alarm:
    if champion_window_last is not None and current.day <= champion_window_last + timedelta(days=cooldown_days):
        return Alarm(False, [f"cooldown: the champion was trained on data up to {champion_window_last}; no alarm "
                             f"before {champion_window_last + timedelta(days=cooldown_days + 1)}"])
    earlier = {c.day: c for c in sorted(history, key=lambda c: c.day) if c.day < current.day
               and (champion_window_last is None or c.day > champion_window_last)}
    last_alarm = max((d for d, c in earlier.items() if c.alarmed), default=None)
    if last_alarm is not None and current.day <= last_alarm + timedelta(days=cooldown_days):
        return Alarm(False, [f"an alarm fired for {last_alarm}; its retraining gets {cooldown_days} day(s)"])
    fresh = [d for d in sorted(earlier) if last_alarm is None or d > last_alarm]  # evidence not yet acted on
    recent = [earlier[d] for d in fresh[-(window - 1):]] if window > 1 else []
    recent.append(current)
    bad = [c for c in recent if c.bad]
    if len(bad) >= persistence:
        return Alarm(True, [f"{len(bad)} of the last {len(recent)} checks were bad (needs {persistence} of {window}): "
                            + "; ".join(f"{c.day}: {' / '.join(c.reasons)}" for c in bad)])
    return Alarm(False, [f"{len(bad)} of the last {len(recent)} checks were bad (needs {persistence} of {window})"])
