from cargohold.storage.blobs.base import BlobStore, UploadOffsetMismatch, UploadWriter
from cargohold.storage.blobs.filesystem import FilesystemBlobStore

__all__ = ["BlobStore", "FilesystemBlobStore", "UploadOffsetMismatch", "UploadWriter"]
