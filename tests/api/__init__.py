"""HTTP-level OCI Distribution conformance tests against a live cargohold server."""
