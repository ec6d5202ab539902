from cargohold.storage.meta.base import (
    ChangeOrigin,
    ImmutableRule,
    ManifestRecord,
    MetadataStore,
    ReferrerRecord,
    TagEvent,
    TagRecord,
    UploadRecord,
)
from cargohold.storage.meta.sql import SqlMetadataStore

__all__ = [
    "ChangeOrigin",
    "ImmutableRule",
    "ManifestRecord",
    "MetadataStore",
    "ReferrerRecord",
    "SqlMetadataStore",
    "TagEvent",
    "TagRecord",
    "UploadRecord",
]
