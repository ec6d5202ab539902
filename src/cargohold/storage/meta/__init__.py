from cargohold.storage.meta.base import (
    ManifestRecord,
    MetadataStore,
    ReferrerRecord,
    UploadRecord,
)
from cargohold.storage.meta.sql import SqlMetadataStore

__all__ = ["ManifestRecord", "MetadataStore", "ReferrerRecord", "SqlMetadataStore", "UploadRecord"]
