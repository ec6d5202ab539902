"""Storage seams: a content-addressed BlobStore and a MetadataStore."""
