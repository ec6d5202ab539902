"""Media types the registry understands."""

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

DOCKER_SCHEMA1 = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)

IMAGE_MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEXES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = IMAGE_MANIFESTS | INDEXES

# Config media types of container images (as opposed to artifacts such as signatures).
IMAGE_CONFIGS = frozenset(
    {
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
    }
)


def is_scannable(media_type: str, artifact_type: str | None, subject: str | None) -> bool:
    """Whether a manifest is a container image or an index of them, the things a
    vulnerability scan looks at; ``artifact_type`` is as stored (for an image manifest
    without ``artifactType``, its config's media type). Referrers are never scanned."""
    if subject is not None:
        return False
    if media_type in INDEXES:
        return artifact_type is None
    return media_type in IMAGE_MANIFESTS and artifact_type in IMAGE_CONFIGS
