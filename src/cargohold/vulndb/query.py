"""The OSV query API over the stored advisories: what `POST /v1/query` and `/v1/querybatch`
answer, without HTTP.

A query names a package by `{"name", "ecosystem"}` or by `{"purl"}`, with an optional
`version`. With a version the answer is every advisory (not withdrawn) affecting that
version, as the full OSV records imported; without one, every advisory naming the package.
A batch answers each query with the advisories' `id` and `modified` only, as osv.dev does.

purl types map to OSV ecosystems: pypi -> PyPI, golang -> Go, npm -> npm, cargo ->
crates.io, deb (debian, ubuntu) -> Debian/Ubuntu, apk (alpine, wolfi, chainguard) ->
Alpine/Wolfi/Chainguard. Debian, Ubuntu and Alpine advisories are per release, so their purls
need the `distro` qualifier (`distro=debian-12`, `distro=alpine-3.19`); an `upstream`
qualifier names the source package advisories use (`upstream=openssl` or `openssl@3.0.11-1`).
Commit queries and pagination are not supported: every answer is one page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from packageurl import PackageURL
from sqlalchemy import select

from cargohold.storage.meta.models import advisories
from cargohold.vulndb.matching import PackageRef, match_advisory
from cargohold.vulndb.store import AdvisoryStore
from cargohold.vulndb.versions import canonical_ecosystem

MAX_BATCH = 1000  # osv.dev's limit too
_MAX_FIELD = 1024
_CHUNK = 500

_DEBIAN_CODENAMES = {
    "stretch": "9",
    "buster": "10",
    "bullseye": "11",
    "bookworm": "12",
    "trixie": "13",
    "forky": "14",
}


class QueryError(ValueError):
    """The query cannot be answered as asked (the caller's mistake): HTTP 400."""


@dataclass(frozen=True, slots=True)
class PackageQuery:
    ecosystem: str  # canonical OSV ecosystem
    name: str
    version: str | None = None
    source_name: str | None = None
    source_version: str | None = None

    @property
    def ref(self) -> PackageRef:
        return PackageRef(
            self.ecosystem, self.name, self.version or "", self.source_name, self.source_version
        )


def _string(value: Any, field: str) -> str | None:
    """A non-empty string field, None when absent or empty."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise QueryError(f"{field} must be a string")
    if len(value) > _MAX_FIELD:
        raise QueryError(f"{field} is longer than {_MAX_FIELD} characters")
    return value.strip() or None


def _distro_ecosystem(purl: PackageURL, distro: str | None) -> str:
    namespace = (purl.namespace or "").lower()
    release = (distro or "").strip().lower()
    if release.startswith(f"{namespace}-"):
        release = release[len(namespace) + 1 :]
    if purl.type == "deb":
        if namespace == "debian":
            if not release:
                raise QueryError(
                    "a pkg:deb/debian purl needs a distro qualifier naming the release, "
                    "e.g. distro=debian-12: Debian advisories are per release"
                )
            release = _DEBIAN_CODENAMES.get(release, release)
            if not re.fullmatch(r"\d+(?:\.\d+)*", release):
                raise QueryError(f"unrecognized Debian release in distro={distro!r}")
            return canonical_ecosystem(f"Debian:{release}")
        if namespace == "ubuntu":
            match = re.fullmatch(r"(\d\d)\.(\d\d)(?:\.\d+)?", release)
            if not match:
                raise QueryError(
                    "a pkg:deb/ubuntu purl needs a distro qualifier naming the release, "
                    "e.g. distro=ubuntu-22.04"
                )
            year, month = int(match.group(1)), match.group(2)
            lts = ":LTS" if month == "04" and year % 2 == 0 else ""
            return f"Ubuntu:{year:02d}.{month}{lts}"
        raise QueryError(f"pkg:deb namespace {purl.namespace!r} is not supported")
    # apk
    if namespace == "alpine":
        if not re.fullmatch(r"v?\d+\.\d+(?:\.\d+)*", release):
            raise QueryError(
                "a pkg:apk/alpine purl needs a distro qualifier naming the release, "
                "e.g. distro=alpine-3.19: Alpine advisories are per release"
            )
        return canonical_ecosystem(f"Alpine:{release}")
    if namespace in ("wolfi", "chainguard"):
        return canonical_ecosystem(namespace)
    raise QueryError(f"pkg:apk namespace {purl.namespace!r} is not supported")


def _from_purl(text: str, version: str | None) -> PackageQuery:
    try:
        purl = PackageURL.from_string(text)
    except ValueError as exc:
        raise QueryError(f"invalid purl: {exc}") from None
    if purl.version and version:
        raise QueryError("the version is given both in the purl and in the query")
    version = (purl.version or "").strip() or version
    qualifiers = purl.qualifiers if isinstance(purl.qualifiers, dict) else {}
    kind = purl.type
    name = purl.name
    if kind in ("pypi", "cargo"):
        return PackageQuery("PyPI" if kind == "pypi" else "crates.io", name, version)
    if kind in ("golang", "npm"):
        full = f"{purl.namespace}/{name}" if purl.namespace else name
        return PackageQuery("Go" if kind == "golang" else "npm", full, version)
    if kind in ("deb", "apk"):
        ecosystem = _distro_ecosystem(purl, qualifiers.get("distro"))
        source_name = source_version = None
        upstream = (qualifiers.get("upstream") or "").strip()
        if upstream:
            source_name, _, upstream_version = upstream.partition("@")
            source_version = upstream_version or None
        return PackageQuery(ecosystem, name, version, source_name or None, source_version)
    raise QueryError(
        f"purl type {kind!r} is not supported (pypi, golang, npm, cargo, deb, apk are)"
    )


def parse_query(body: Any) -> PackageQuery:
    """One OSV query object -> PackageQuery, or QueryError."""
    if not isinstance(body, dict):
        raise QueryError("a query must be a JSON object")
    if body.get("commit") not in (None, ""):
        raise QueryError("commit queries are not supported: query by package and version")
    _string(body.get("page_token"), "page_token")  # accepted; every answer is one page
    version = _string(body.get("version"), "version")
    package = body.get("package")
    if package is None:
        raise QueryError("package is required: {name, ecosystem} or {purl}")
    if not isinstance(package, dict):
        raise QueryError("package must be an object: {name, ecosystem} or {purl}")
    purl = _string(package.get("purl"), "package.purl")
    name = _string(package.get("name"), "package.name")
    ecosystem = _string(package.get("ecosystem"), "package.ecosystem")
    if purl is not None:
        if name is not None or ecosystem is not None:
            raise QueryError("give either package.purl or package.name and package.ecosystem")
        return _from_purl(purl, version)
    if name is None or ecosystem is None:
        raise QueryError("package.name and package.ecosystem are required (or package.purl)")
    return PackageQuery(canonical_ecosystem(ecosystem), name, version)


def parse_batch(body: Any) -> list[PackageQuery]:
    if not isinstance(body, dict):
        raise QueryError("the request must be a JSON object {queries: [...]}")
    queries = body.get("queries")
    if not isinstance(queries, list):
        raise QueryError("queries must be a list of query objects")
    if len(queries) > MAX_BATCH:
        raise QueryError(f"at most {MAX_BATCH} queries per batch")
    parsed = []
    for index, query in enumerate(queries):
        try:
            parsed.append(parse_query(query))
        except QueryError as exc:
            raise QueryError(f"queries[{index}]: {exc}") from None
    return parsed


def affecting(store: AdvisoryStore, query: PackageQuery) -> list[Any]:
    """The advisories (not withdrawn, by id) naming the package and, when the query has a
    version, affecting it."""
    ref = query.ref
    found = store.query(ref.canonical_ecosystem, ref.match_name)
    if query.version is None:
        return found
    return [advisory for advisory in found if match_advisory(advisory, ref) is not None]


def raw_records(store: AdvisoryStore, ids: Sequence[str]) -> list[dict[str, Any]]:
    """The OSV records as imported, in the order of `ids`."""
    texts: dict[str, str] = {}
    with store.engine.connect() as conn:
        for start in range(0, len(ids), _CHUNK):
            chunk = list(ids[start : start + _CHUNK])
            rows = conn.execute(
                select(advisories.c.id, advisories.c.raw).where(advisories.c.id.in_(chunk))
            )
            texts.update((row.id, row.raw) for row in rows)
    return [json.loads(texts[i]) for i in ids if i in texts]


def _timestamp(value: datetime) -> str:
    value = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def query(store: AdvisoryStore, body: Any) -> dict[str, Any]:
    """`POST /v1/query`: {"vulns": [full OSV records]}."""
    found = affecting(store, parse_query(body))
    return {"vulns": raw_records(store, [advisory.id for advisory in found])}


def query_batch(store: AdvisoryStore, body: Any) -> dict[str, Any]:
    """`POST /v1/querybatch`: {"results": [{"vulns": [{"id", "modified"}]}]}, one per query."""
    results = []
    for package_query in parse_batch(body):
        found = affecting(store, package_query)
        results.append({"vulns": [{"id": a.id, "modified": _timestamp(a.modified)} for a in found]})
    return {"results": results}
