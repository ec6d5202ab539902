"""Severity: a CVSS base score from the vector, or the database's own label, as one of
critical / high / medium / low / unknown.

CVSS v3.0/v3.1 and v2 base scores are computed here from the specifications' formulas
(FIRST CVSS v3.1 specification section 7, CVSS v2 guide section 3.2.1). The `cvss` package
on PyPI would do it too, but it is LGPL-3.0, which this Apache-2.0 project does not take
on. CVSS v4 scores need the specification's large lookup tables; a v4 vector is kept, and
its severity comes from the database's own label, else "unknown".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

LEVELS = ("critical", "high", "medium", "low", "unknown")
_RANK = {level: rank for rank, level in enumerate(reversed(LEVELS))}


class CvssError(ValueError):
    """Not a CVSS vector this module can score."""


@dataclass(frozen=True, slots=True)
class Severity:
    level: str  # one of LEVELS
    vector: str | None = None  # the CVSS vector the level comes from, if any
    score: float | None = None  # its base score, when computed


UNKNOWN = Severity("unknown")


def rank(level: str) -> int:
    """Higher is worse; "unknown" is 0."""
    return _RANK.get(level, 0)


# -- CVSS v3.x

_V3_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "PR": {"N": 0.85, "L": 0.62, "H": 0.27},
    "UI": {"N": 0.85, "R": 0.62},
    "S": {"U": 0.0, "C": 0.0},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
_V3_PR_CHANGED = {"N": 0.85, "L": 0.68, "H": 0.5}


def _metrics(parts: list[str], vector: str) -> dict[str, str]:
    metrics: dict[str, str] = {}
    for part in parts:
        name, sep, value = part.partition(":")
        if not sep or not name or not value or name in metrics:
            raise CvssError(f"malformed CVSS vector: {vector!r}")
        metrics[name] = value
    return metrics


def _roundup_v31(value: float) -> float:
    """CVSS v3.1 Roundup: the smallest one-decimal number >= value, free of float noise."""
    scaled = round(value * 100_000)
    if scaled % 10_000 == 0:
        return scaled / 100_000.0
    return (math.floor(scaled / 10_000) + 1) / 10.0


def _roundup_v30(value: float) -> float:
    return math.ceil(value * 10) / 10


def cvss3_base_score(vector: str) -> float:
    """The base score of a `CVSS:3.0/...` or `CVSS:3.1/...` vector (temporal and
    environmental metrics, if present, are ignored)."""
    prefix, _, rest = vector.strip().partition("/")
    if prefix not in ("CVSS:3.0", "CVSS:3.1"):
        raise CvssError(f"not a CVSS v3 vector: {vector!r}")
    metrics = _metrics(rest.split("/"), vector)
    values: dict[str, float] = {}
    for name, weights in _V3_WEIGHTS.items():
        value = metrics.get(name)
        if value not in weights:
            raise CvssError(f"CVSS v3 vector without a valid {name}: {vector!r}")
        values[name] = weights[value]
    changed = metrics["S"] == "C"
    if changed:
        values["PR"] = _V3_PR_CHANGED[metrics["PR"]]
    iss = 1 - (1 - values["C"]) * (1 - values["I"]) * (1 - values["A"])
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
    exploitability = 8.22 * values["AV"] * values["AC"] * values["PR"] * values["UI"]
    if impact <= 0:
        return 0.0
    roundup = _roundup_v31 if prefix == "CVSS:3.1" else _roundup_v30
    total = 1.08 * (impact + exploitability) if changed else impact + exploitability
    return roundup(min(total, 10.0))


# -- CVSS v2

_V2_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"L": 0.395, "A": 0.646, "N": 1.0},
    "AC": {"H": 0.35, "M": 0.61, "L": 0.71},
    "Au": {"M": 0.45, "S": 0.56, "N": 0.704},
    "C": {"N": 0.0, "P": 0.275, "C": 0.660},
    "I": {"N": 0.0, "P": 0.275, "C": 0.660},
    "A": {"N": 0.0, "P": 0.275, "C": 0.660},
}


def cvss2_base_score(vector: str) -> float:
    """The base score of a CVSS v2 vector `AV:N/AC:L/Au:N/C:P/I:P/A:P` (optionally
    wrapped in parentheses or prefixed `CVSS:2.0/`)."""
    text = vector.strip().strip("()")
    if text.startswith("CVSS:2.0/"):
        text = text[len("CVSS:2.0/") :]
    metrics = _metrics(text.split("/"), vector)
    values: dict[str, float] = {}
    for name, weights in _V2_WEIGHTS.items():
        value = metrics.get(name)
        if value not in weights:
            raise CvssError(f"CVSS v2 vector without a valid {name}: {vector!r}")
        values[name] = weights[value]
    impact = 10.41 * (1 - (1 - values["C"]) * (1 - values["I"]) * (1 - values["A"]))
    exploitability = 20 * values["AV"] * values["AC"] * values["Au"]
    f_impact = 0.0 if impact == 0 else 1.176
    score = ((0.6 * impact) + (0.4 * exploitability) - 1.5) * f_impact
    return float(Decimal(str(score)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


# -- ratings


def rating_v3(score: float) -> str:
    """The CVSS v3 qualitative rating; a score of 0.0 ("none") is reported as "low"."""
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    return "low"


def rating_v2(score: float) -> str:
    """NVD's CVSS v2 ratings (v2 has no "critical")."""
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    return "low"


_LABELS = {
    "critical": "critical",
    "high": "high",
    "important": "high",  # Red Hat
    "moderate": "medium",  # GitHub, Red Hat
    "medium": "medium",
    "low": "low",
    "negligible": "low",  # Ubuntu
    "unimportant": "low",  # Debian
}


def normalize_label(label: Any) -> str:
    """A database's own severity word (GitHub `MODERATE`, Debian urgency `low**`, Ubuntu
    `negligible`...) as one of LEVELS; anything else is "unknown"."""
    if not isinstance(label, str):
        return "unknown"
    return _LABELS.get(label.strip().rstrip("*").strip().lower(), "unknown")


def from_vector(kind: str, vector: str) -> Severity | None:
    """The severity of one OSV `severity` entry; None when it cannot be scored."""
    try:
        if kind == "CVSS_V3" or vector.startswith("CVSS:3."):
            score = cvss3_base_score(vector)
            return Severity(rating_v3(score), vector, score)
        if kind == "CVSS_V2":
            score = cvss2_base_score(vector)
            return Severity(rating_v2(score), vector, score)
    except CvssError:
        return None
    return None


def assess(severity_entries: list[Any], labels: list[Any]) -> Severity:
    """The severity of an advisory.

    The worst computable CVSS v3 score wins, then the worst v2 score; otherwise the worst of
    the database's own labels, keeping a CVSS v4 (or otherwise unscored) vector for display.
    """
    scored: list[Severity] = []
    unscored_vector: str | None = None
    for entry in severity_entries:
        if not isinstance(entry, dict):
            continue
        kind, vector = entry.get("type"), entry.get("score")
        if not isinstance(kind, str) or not isinstance(vector, str):
            continue
        if kind == "Ubuntu":
            labels = [*labels, vector]
            continue
        result = from_vector(kind, vector)
        if result is not None:
            scored.append(result)
        elif kind.startswith("CVSS") and unscored_vector is None:
            unscored_vector = vector
    for version in ("CVSS:3", ""):
        candidates = [s for s in scored if (s.vector or "").startswith(version)]
        if candidates:
            return max(candidates, key=lambda s: s.score or 0.0)
    level = max((normalize_label(label) for label in labels), key=rank, default="unknown")
    return Severity(level, unscored_vector, None)
