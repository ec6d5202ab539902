"""Hostile input: schemathesis against the admin API, hypothesis properties, and
specific attacks over HTTP. Example counts are small for CI; CARGOHOLD_FUZZ_SCALE=N
runs N times as many."""
