"""Where the platform's files live: a local folder, or an object store (gs://) through fsspec.

A plain path (no `scheme://`) is a local file and is read and written as it always was; anything else
(`gs://bucket/...`, `file:///...`, `memory://...`) goes through fsspec. gs:// needs gcsfs, which finds
credentials as Google's libraries do (Application Default Credentials: a service-account key named by
GOOGLE_APPLICATION_CREDENTIALS, gcloud's login, or the workload identity of a GKE pod) and talks to
`STORAGE_EMULATOR_HOST` instead of Google when that is set (tests).

Listings are not cached for object stores: data lands from other processes while a worker, an API server
or a retrying task keeps its file system object, and a cached listing would hide it.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

LOCAL_PROTOCOLS = ("file", "local")


def is_url(location: str) -> bool:
    return "://" in str(location)


def protocol_of(location: str) -> str:
    return str(location).split("://", 1)[0] if is_url(location) else "file"


def is_local(location: str) -> bool:
    return protocol_of(location) in LOCAL_PROTOCOLS


def filesystem(location: str) -> tuple[Any, str]:
    """(file system, path inside it) for a local path or a URL."""
    import fsspec

    options = {} if is_local(location) else {"use_listings_cache": False}
    fs_and_path: tuple[Any, str] = fsspec.core.url_to_fs(str(location), **options)
    return fs_and_path


def join(root: str, *parts: str) -> str:
    return "/".join([str(root).rstrip("/"), *parts])


def read_bytes(location: str) -> bytes:
    fs, path = filesystem(location)
    content: bytes = fs.cat_file(path)
    return content


def read_frame(location: str, fmt: str = "parquet") -> pd.DataFrame:
    """A parquet or CSV file as a pandas frame. Local paths go straight to pandas, as before; an object is
    fetched whole through fsspec (one request; pandas would otherwise pick pyarrow's own GCS client, which
    has other credentials rules and no emulator support)."""
    import pandas as pd

    read = pd.read_parquet if fmt == "parquet" else pd.read_csv
    if not is_url(location):
        return read(location)
    return read(io.BytesIO(read_bytes(location)))


def write_frame(frame: pd.DataFrame, location: str, fmt: str = "parquet") -> None:
    """Write a frame whole or not at all: local files through a temporary name and a rename (readers never
    see half a file, and concurrent writers never share the temporary); objects are whole by nature."""
    import uuid

    buffer = io.BytesIO()
    if fmt == "parquet":
        frame.to_parquet(buffer, index=False)
    else:
        frame.to_csv(buffer, index=False)
    fs, path = filesystem(location)
    if is_local(location):
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        with fs.open(tmp, "wb") as f:
            f.write(buffer.getvalue())
        fs.mv(tmp, path)
    else:
        fs.pipe_file(path, buffer.getvalue())
