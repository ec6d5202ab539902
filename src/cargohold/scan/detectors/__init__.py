"""Package detectors: each finds one kind of package in an image's final filesystem."""

from __future__ import annotations

from cargohold.scan.detectors.apk import ApkDetector
from cargohold.scan.detectors.base import Detector
from cargohold.scan.detectors.dpkg import DpkgDetector
from cargohold.scan.detectors.gobinary import GoBinaryDetector
from cargohold.scan.detectors.node import NodeDetector
from cargohold.scan.detectors.python import PythonDetector


def default_detectors() -> list[Detector]:
    return [DpkgDetector(), ApkDetector(), PythonDetector(), NodeDetector(), GoBinaryDetector()]


__all__ = [
    "ApkDetector",
    "Detector",
    "DpkgDetector",
    "GoBinaryDetector",
    "NodeDetector",
    "PythonDetector",
    "default_detectors",
]
