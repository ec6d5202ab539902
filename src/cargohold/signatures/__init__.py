"""Signatures of stored images: verification of cosign signatures."""
