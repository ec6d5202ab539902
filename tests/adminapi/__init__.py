"""The JSON admin API (/api/v1) against an in-process registry served over loopback."""
