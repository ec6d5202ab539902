"""Image inventory for vulnerability scanning: apply an image's layers (streamed,
never extracted), detect its distribution and list its packages (dpkg, apk, Python,
npm, Go binaries), each with its OSV ecosystem, purl and the layer it came from.

    inventory = build_inventory([LayerSource(digest, media_type, opener), ...])
"""

from cargohold.scan.inventory import Inventory, build_inventory, inventory_from_filesystem
from cargohold.scan.layers import (
    FileEntry,
    ImageFilesystem,
    LayerReadError,
    LayerSource,
    ScanLimits,
    open_layer_stream,
)
from cargohold.scan.model import OSInfo, Package, Warnings

__all__ = [
    "FileEntry",
    "ImageFilesystem",
    "Inventory",
    "LayerReadError",
    "LayerSource",
    "OSInfo",
    "Package",
    "ScanLimits",
    "Warnings",
    "build_inventory",
    "inventory_from_filesystem",
    "open_layer_stream",
]
