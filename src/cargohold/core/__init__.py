"""The registry core: everything a registry does, with no knowledge of HTTP.

The package imports nothing itself, so that a command needing one part (`cargohold gc`
needs core.gc) does not load the rest: import from the modules (core.registry.Registry).
"""
