"""Vulnerability advisories: OSV records, each ecosystem's version order, and matching.

- `osv.parse_record`: one OSV record -> `osv.Advisory` (lenient; `RecordError` when unusable).
- `versions`: `ordering_for(ecosystem, range_type)` -> an `Ordering` (dpkg, apk, PEP 440,
  SemVer, Go); `canonical_ecosystem`, `normalize_package`.
- `matching`: `PackageRef` (an installed package), `Finding`, `match_advisory`,
  `range_match`, `AdvisoryIndex` (in memory).
- `severity`: CVSS v3.x / v2 base scores and ratings, database labels.
- `store.AdvisoryStore`: the SQL tables (`save`, `query`, `findings`, `get`, `status`).
- `importer.import_path`: a folder, zip or .json file of records -> the store, with counts.
"""
