from pathlib import Path
from urllib.parse import unquote, urlsplit

from cargohold.storage.blobs.base import BlobStore, UploadOffsetMismatch, UploadWriter
from cargohold.storage.blobs.filesystem import FilesystemBlobStore
from cargohold.storage.blobs.locks import UploadLocks


def open_blob_store(
    storage_url: str | None, data_dir: Path, locks: UploadLocks | None = None
) -> BlobStore:
    """The blob store a URL names: file:///path or s3://bucket/prefix?...; default data_dir.

    `locks` coordinates upload writers across machines (S3 only; file locks already do on
    one machine's filesystem).
    """
    if storage_url is None:
        return FilesystemBlobStore(data_dir)
    if storage_url.startswith("file://"):
        return FilesystemBlobStore(Path(unquote(urlsplit(storage_url).path)))
    if storage_url.startswith("s3://"):
        from cargohold.storage.blobs.s3 import S3BlobStore

        return S3BlobStore.from_url(storage_url, locks=locks)
    raise ValueError(f"unknown storage URL {storage_url!r}: use file:// or s3://")


__all__ = [
    "BlobStore",
    "FilesystemBlobStore",
    "UploadOffsetMismatch",
    "UploadWriter",
    "open_blob_store",
]
