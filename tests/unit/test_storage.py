"""mlops.storage: local paths behave as before (atomic writes, no temporary left behind); URLs go through
fsspec (file://, memory:// here; gs:// against the GCS emulator in tests/integration/test_gcs.py)."""

import uuid

import pandas as pd

from mlops import storage, synthetic


def frame():
    return pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})


def test_locations():
    assert not storage.is_url("/data/x.parquet") and storage.is_local("/data/x.parquet")
    assert storage.is_url("file:///data/x") and storage.is_local("file:///data/x")
    assert storage.is_url("gs://bucket/x") and not storage.is_local("gs://bucket/x")
    assert storage.protocol_of("gs://bucket/x") == "gs"
    assert storage.join("gs://bucket/root/", "churn", "part-0.parquet") == "gs://bucket/root/churn/part-0.parquet"


def test_local_round_trip_is_atomic(tmp_path):
    target = tmp_path / "deep" / "date=2026-01-01" / "part-0.parquet"
    storage.write_frame(frame(), str(target))
    assert [p.name for p in target.parent.iterdir()] == ["part-0.parquet"]  # no temporary left
    pd.testing.assert_frame_equal(storage.read_frame(str(target)), frame())
    pd.testing.assert_frame_equal(storage.read_frame(f"file://{target}"), frame())
    storage.write_frame(frame(), str(tmp_path / "x.csv"), "csv")
    pd.testing.assert_frame_equal(storage.read_frame(str(tmp_path / "x.csv"), "csv"), frame())


def test_object_store_round_trip_and_synthetic_under_a_url():
    root = f"memory://mlops-{uuid.uuid4().hex[:8]}"
    storage.write_frame(frame(), f"{root}/f/part-0.parquet")
    pd.testing.assert_frame_equal(storage.read_frame(f"{root}/f/part-0.parquet"), frame())

    from datetime import date

    written = synthetic.generate("churn", date(2026, 1, 1), date(2026, 1, 2), root, rows=10)
    assert written == [f"{root}/churn/date=2026-01-0{d}/part-0.parquet" for d in (1, 2)]
    labels = storage.read_frame(str(synthetic.labels_path(root, "churn", date(2026, 1, 2))))
    assert list(labels.columns) == ["row", "churned"] and len(labels) == 10
    fs, path = storage.filesystem(root)
    fs.rm(path, recursive=True)
