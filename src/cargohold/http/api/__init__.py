"""The JSON admin API (/api/v1, OpenAPI at /api/openapi.json): see create_admin_api."""

from cargohold.http.api.app import create_admin_api

__all__ = ["create_admin_api"]
