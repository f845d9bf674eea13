"""A promotion moves both aliases and writes the audit record, or changes nothing: when the audit record
cannot be written, or the server refuses the second alias, the aliases are put back before the error."""

import pytest

from helpers import load_example
from mlops import tracking
from mlops.audit import AuditLog
from mlops.policy import Decision


def _versions(settings, n):
    client = tracking.client(settings)
    client.create_registered_model("churn")
    return [str(client.create_model_version("churn", source=f"{settings.artifact_root}/stub/{i}").version)
            for i in range(n)]


def _aliases(settings):
    out = {}
    for alias in ("champion", "previous-champion"):
        v = tracking.version_by_alias(settings, "churn", alias)
        out[alias] = str(v.version) if v is not None else None
    return out


def test_an_unwritable_audit_log_leaves_the_aliases_as_they_were(platform, monkeypatch):
    from mlops.promotion import promote

    spec, decision = load_example("churn"), Decision(True, "promote", ["test"])
    v1, v2, v3 = _versions(platform, 3)
    assert promote(platform, spec, v1, decision, None, "run-1").outcome == "promoted"
    assert promote(platform, spec, v2, decision, v1, "run-2").outcome == "promoted"
    before, records = _aliases(platform), len(AuditLog(platform.audit_root, "churn").records())
    assert before == {"champion": v2, "previous-champion": v1}

    def refuse(self, record):
        raise PermissionError("audit store is read-only")

    monkeypatch.setattr(AuditLog, "append", refuse)
    with pytest.raises(PermissionError):
        promote(platform, spec, v3, decision, v2, "run-3")
    assert _aliases(platform) == before
    monkeypatch.undo()
    assert len(AuditLog(platform.audit_root, "churn").records()) == records


def test_a_refused_alias_move_leaves_no_alias_and_no_record(platform, monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import PERMISSION_DENIED

    from mlops.promotion import promote

    spec, decision = load_example("churn"), Decision(True, "promote", ["test"])
    v1, v2 = _versions(platform, 2)
    assert promote(platform, spec, v1, decision, None, "run-1").outcome == "promoted"
    real = MlflowClient.set_registered_model_alias

    def champion_refused(self, name, alias, version):
        if alias == "champion":
            raise MlflowException("Permission denied", error_code=PERMISSION_DENIED)
        return real(self, name, alias, version)

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", champion_refused)
    with pytest.raises(MlflowException):
        promote(platform, spec, v2, decision, v1, "run-2")
    monkeypatch.undo()
    assert _aliases(platform) == {"champion": v1, "previous-champion": None}
    assert [r.to_version for r in AuditLog(platform.audit_root, "churn").records()] == [v1]
