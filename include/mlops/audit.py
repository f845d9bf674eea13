"""The append-only audit log of alias moves, one per model.

Each record is its own small JSON object under `<audit_root>/<model>/`, named so that names sort by
time. Nothing is ever rewritten, appends cannot clobber each other, and the same layout works on a
local disk and on an object store (gs://) through fsspec. The fleet page and rollback read it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar


@dataclass(frozen=True)
class AuditRecord:
    model: str
    alias: str
    from_version: str | None
    to_version: str
    action: str  # promote | force_promote | rollback | repair; for the deployed alias: deploy | deploy_rollback
    actor: str  # who or what moved it: "airflow:<dag_id>/<run_id>" or a user name
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)  # decision, metrics, holdout fingerprint, ...
    time: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="microseconds"))
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


R = TypeVar("R")


class JsonRecordLog(Generic[R]):
    """Append-only records of one model, one small JSON object each under `<root>/<model>[/<folder>]`, named so
    that names sort by time (`time` and `id` fields of a dataclass `record_type`). Shared by the audit log and
    the approval log."""

    record_type: type[R]
    folder = ""

    def __init__(self, root: str, model: str):
        from mlops.storage import filesystem

        self.model = model
        self.fs, base = filesystem(root)  # listings uncached on object stores: other processes append
        self.dir = f"{base.rstrip('/')}/{model}" + (f"/{self.folder}" if self.folder else "")

    def append(self, record: R) -> R:
        self.fs.makedirs(self.dir, exist_ok=True)
        time, rid = getattr(record, "time"), getattr(record, "id")  # noqa: B009 - any dataclass with both
        stamp = time.replace(":", "").replace("-", "").replace("+0000", "Z")
        path = f"{self.dir}/{stamp}-{rid}.json"
        with self.fs.open(path, "w") as f:
            f.write(json.dumps(asdict(record), sort_keys=True))  # type: ignore[call-overload]
        return record

    def records(self) -> list[R]:
        if not self.fs.exists(self.dir):
            return []
        out = []
        for path in sorted(self.fs.ls(self.dir, detail=False)):
            if path.endswith(".json"):
                with self.fs.open(path) as f:
                    out.append(self.record_type(**json.loads(f.read())))
        return out


class AuditLog(JsonRecordLog[AuditRecord]):
    record_type = AuditRecord

    def last_for_alias(self, alias: str) -> AuditRecord | None:
        matching = [r for r in self.records() if r.alias == alias]
        return matching[-1] if matching else None
