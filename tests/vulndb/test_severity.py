"""CVSS base scores from the specification formulas, ratings, and database labels."""

from __future__ import annotations

import pytest

from cargohold.vulndb.severity import (
    CvssError,
    Severity,
    assess,
    cvss2_base_score,
    cvss3_base_score,
    normalize_label,
)

# Scores as FIRST's calculators give them (checked against every v3.0, v3.1 and v2 base
# vector while this module was written).
CVSS3 = {
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H": 9.8,
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H": 10.0,
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N": 6.1,
    "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:N": 8.1,
    "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:L/A:N": 3.3,
    "CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N": 1.6,
    "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:C/C:L/I:L/A:N": 5.5,
    "CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:C/C:L/I:L/A:L": 4.3,
    "CVSS:3.1/AV:L/AC:L/PR:H/UI:R/S:U/C:L/I:N/A:H": 4.8,
    "CVSS:3.1/AV:N/AC:H/PR:L/UI:N/S:U/C:N/I:L/A:L": 4.2,
    "CVSS:3.1/AV:L/AC:H/PR:L/UI:R/S:C/C:N/I:N/A:L": 2.5,
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N": 0.0,
    "CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N": 5.9,
    "CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:N/A:H": 8.1,
    "CVSS:3.0/AV:A/AC:L/PR:L/UI:R/S:C/C:N/I:H/A:N": 6.1,
    "CVSS:3.0/AV:P/AC:L/PR:N/UI:N/S:C/C:N/I:L/A:H": 6.1,
    "CVSS:3.0/AV:A/AC:H/PR:H/UI:N/S:U/C:L/I:N/A:H": 4.8,
    "CVSS:3.0/AV:P/AC:H/PR:N/UI:R/S:U/C:N/I:N/A:L": 1.8,
    "CVSS:3.0/AV:L/AC:L/PR:H/UI:R/S:C/C:H/I:L/A:H": 7.7,
    # Temporal metrics after the base ones do not change the base score.
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O/RC:C": 9.8,
}

CVSS2 = {
    "AV:N/AC:L/Au:N/C:P/I:P/A:P": 7.5,
    "AV:N/AC:M/Au:N/C:N/I:P/A:N": 4.3,
    "AV:N/AC:L/Au:N/C:C/I:C/A:C": 10.0,
    "AV:L/AC:H/Au:M/C:N/I:N/A:P": 0.8,
    "AV:L/AC:L/Au:S/C:N/I:P/A:P": 3.2,
    "AV:N/AC:L/Au:M/C:P/I:P/A:P": 5.8,
    "AV:L/AC:M/Au:S/C:N/I:P/A:N": 1.5,
    "AV:L/AC:H/Au:S/C:N/I:C/A:N": 3.8,
    "(AV:N/AC:L/Au:N/C:N/I:N/A:N)": 0.0,
}


@pytest.mark.parametrize(("vector", "score"), sorted(CVSS3.items()))
def test_cvss3_base_score(vector: str, score: float) -> None:
    assert cvss3_base_score(vector) == score


@pytest.mark.parametrize(("vector", "score"), sorted(CVSS2.items()))
def test_cvss2_base_score(vector: str, score: float) -> None:
    assert cvss2_base_score(vector) == score


@pytest.mark.parametrize(
    "vector",
    [
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",  # no A
        "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",  # repeated metric
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
        "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "",
    ],
)
def test_cvss3_rejects(vector: str) -> None:
    with pytest.raises(CvssError):
        cvss3_base_score(vector)


def test_ratings_from_vectors() -> None:
    def level(vector: str, kind: str = "CVSS_V3") -> str:
        return assess([{"type": kind, "score": vector}], []).level

    assert level("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") == "critical"  # 9.8
    assert level("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:N") == "high"  # 8.1
    assert level("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:C/C:L/I:L/A:N") == "medium"  # 5.5
    assert level("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:L/A:N") == "low"  # 3.3
    assert level("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N") == "low"  # 0.0, "none"
    assert level("AV:N/AC:L/Au:N/C:C/I:C/A:C", "CVSS_V2") == "high"  # v2 has no critical
    assert level("AV:N/AC:M/Au:N/C:N/I:P/A:N", "CVSS_V2") == "medium"


def test_assess_prefers_v3_then_v2_then_labels() -> None:
    v3_low = {"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:L/A:N"}
    v3_high = {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:N"}
    v2_high = {"type": "CVSS_V2", "score": "AV:N/AC:L/Au:N/C:C/I:C/A:C"}
    v4 = {"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H"}
    assert assess([v3_low, v3_high], []) == Severity("high", v3_high["score"], 8.1)
    assert assess([v2_high, v3_low], ["critical"]) == Severity("low", v3_low["score"], 3.3)
    assert assess([v2_high], ["low"]) == Severity("high", v2_high["score"], 10.0)
    # CVSS v4 is not scored here: the database's label decides, the vector is kept.
    assert assess([v4], ["MODERATE"]) == Severity("medium", v4["score"], None)
    assert assess([v4], []) == Severity("unknown", v4["score"], None)
    assert assess([{"type": "Ubuntu", "score": "negligible"}], []) == Severity("low")
    assert assess(["junk", {"type": "CVSS_V3"}], [None, 3]) == Severity("unknown")


@pytest.mark.parametrize(
    ("label", "level"),
    [
        ("CRITICAL", "critical"),
        ("HIGH", "high"),
        ("important", "high"),
        ("MODERATE", "medium"),
        ("medium", "medium"),
        ("low**", "low"),
        ("unimportant", "low"),
        ("not yet assigned", "unknown"),
        (None, "unknown"),
    ],
)
def test_labels(label: object, level: str) -> None:
    assert normalize_label(label) == level
