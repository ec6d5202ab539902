"""The web UI: sessions, browsing endpoints and end-to-end tests in a real browser."""
