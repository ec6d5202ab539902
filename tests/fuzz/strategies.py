"""Hypothesis strategies shared by the fuzz tests: the spec's grammars, and hostile text."""

from __future__ import annotations

import hashlib
import string
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from .servers import derandomized, scale

TAG = r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def fuzz(examples: int, **extra: Any) -> Any:
    """Hypothesis settings for CI: `examples` cases (times CARGOHOLD_FUZZ_SCALE), no time
    limits per case, and no example database written into the checkout."""
    return settings(
        max_examples=examples * scale(),
        derandomize=derandomized(),
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture,
        ],
        **extra,
    )


# Text that mixes the grammar's own characters with hostile ones.
hostile_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(string.ascii_letters + string.digits + "._-/:@%+=~ \t\n\x00"),
        st.characters(codec="utf-8"),  # any text a URL or header can carry
    ),
    max_size=300,
)
# The name grammar, built up rather than drawn from the regex (much faster to generate).
_alnum = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=8)
_component = st.tuples(
    _alnum, st.lists(st.tuples(st.sampled_from([".", "_", "__", "-", "--"]), _alnum), max_size=3)
).map(lambda parts: parts[0] + "".join(sep + word for sep, word in parts[1]))
names = st.lists(_component, min_size=1, max_size=5).map("/".join)
tags = st.from_regex(TAG, fullmatch=True)
sha256_digests = st.binary(max_size=64).map(lambda b: f"sha256:{hashlib.sha256(b).hexdigest()}")


def _json_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    # JSON can escape what UTF-8 and PostgreSQL cannot hold.
    | st.sampled_from(["\ud800", "a\udfffb", "\x00", "\ufeff"]),
    _json_containers,
    max_leaves=30,
)
media_types = st.sampled_from(
    [
        OCI_MANIFEST,
        OCI_INDEX,
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/json",
        "",
        "x/y",
    ]
)


def _descriptor_values() -> st.SearchStrategy[Any]:
    """Descriptors with each field either right or wrong in some way."""
    return st.fixed_dictionaries(
        {},
        optional={
            "mediaType": st.one_of(
                st.just("application/vnd.oci.image.layer.v1.tar"), hostile_text, json_values
            ),
            "digest": st.one_of(sha256_digests, hostile_text, json_values),
            "size": st.one_of(st.integers(min_value=-(2**70), max_value=2**70), json_values),
            "urls": st.one_of(st.lists(st.text(max_size=20), max_size=2), json_values),
            "artifactType": st.one_of(hostile_text, json_values),
            "annotations": st.one_of(
                st.dictionaries(hostile_text, hostile_text, max_size=2), json_values
            ),
        },
    )


manifest_documents = st.fixed_dictionaries(
    {},
    optional={
        "schemaVersion": st.one_of(st.just(2), json_values),
        "mediaType": st.one_of(media_types, json_values),
        "config": st.one_of(_descriptor_values(), json_values),
        "layers": st.one_of(st.lists(_descriptor_values(), max_size=3), json_values),
        "manifests": st.one_of(st.lists(_descriptor_values(), max_size=3), json_values),
        "subject": st.one_of(_descriptor_values(), json_values),
        "artifactType": st.one_of(hostile_text, json_values),
        "annotations": st.one_of(
            st.dictionaries(hostile_text, hostile_text, max_size=3), json_values
        ),
    },
)
