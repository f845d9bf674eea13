import threading
import time

import pytest

from mlops.audit import AuditLog, AuditRecord
from mlops.locks import LockTimeout, model_lock


def test_audit_log_appends_in_order_and_never_rewrites(tmp_path):
    log = AuditLog(str(tmp_path), "churn")
    assert log.records() == []
    first = log.append(AuditRecord("churn", "champion", None, "1", "promote", "airflow:x/1", "first"))
    second = log.append(AuditRecord("churn", "champion", "1", "2", "promote", "airflow:x/2", "better"))
    log.append(AuditRecord("churn", "shadow", None, "2", "promote", "me", "other alias"))
    records = log.records()
    assert [r.id for r in records[:2]] == [first.id, second.id]
    assert log.last_for_alias("champion").to_version == "2"
    files = sorted((tmp_path / "churn").glob("*.json"))
    assert len(files) == 3
    before = {f.name: f.read_bytes() for f in files}
    log.append(AuditRecord("churn", "champion", "2", "1", "rollback", "me", "undo"))
    after = {f.name: f.read_bytes() for f in (tmp_path / "churn").glob("*.json")}
    assert len(after) == 4 and all(after[name] == data for name, data in before.items())


def test_model_lock_serialises(platform):
    order = []
    held = threading.Event()

    def hold():
        with model_lock(platform, "churn"):
            order.append("a-in")
            held.set()
            time.sleep(0.3)
            order.append("a-out")

    t = threading.Thread(target=hold)
    t.start()
    assert held.wait(10)
    with model_lock(platform, "churn"):
        order.append("b-in")
    t.join()
    assert order == ["a-in", "a-out", "b-in"]


def test_lock_timeout_says_what_to_do(platform):
    with model_lock(platform, "demand"):
        with pytest.raises(LockTimeout, match="stuck promote task"):
            with model_lock(platform, "demand", timeout_s=0.2):
                pass
