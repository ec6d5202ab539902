"""The route table. Names may contain slashes, so each /v2 route ends in a fixed suffix."""

from __future__ import annotations

from starlette.routing import Route

from cargohold.http.handlers import base, blobs, listings, manifests, osv, token, uploads

NAME = "{name:path}"


def v2_routes() -> list[Route]:
    return [
        Route("/v2/", base.api_root, methods=["GET"]),
        Route("/v2/_catalog", listings.catalog, methods=["GET"]),
        Route(f"/v2/{NAME}/blobs/uploads/", uploads.start_upload, methods=["POST"]),
        Route(
            f"/v2/{NAME}/blobs/uploads/{{upload_id}}",
            uploads.upload_status,
            methods=["GET"],
        ),
        Route(f"/v2/{NAME}/blobs/uploads/{{upload_id}}", uploads.patch_upload, methods=["PATCH"]),
        Route(f"/v2/{NAME}/blobs/uploads/{{upload_id}}", uploads.finish_upload, methods=["PUT"]),
        Route(f"/v2/{NAME}/blobs/uploads/{{upload_id}}", uploads.cancel_upload, methods=["DELETE"]),
        Route(f"/v2/{NAME}/blobs/{{digest}}", blobs.get_blob, methods=["GET", "HEAD"]),
        Route(f"/v2/{NAME}/blobs/{{digest}}", blobs.delete_blob, methods=["DELETE"]),
        Route(
            f"/v2/{NAME}/manifests/{{reference}}", manifests.get_manifest, methods=["GET", "HEAD"]
        ),
        Route(f"/v2/{NAME}/manifests/{{reference}}", manifests.put_manifest, methods=["PUT"]),
        Route(f"/v2/{NAME}/manifests/{{reference}}", manifests.delete_manifest, methods=["DELETE"]),
        Route(f"/v2/{NAME}/tags/list", listings.list_tags, methods=["GET"]),
        Route(f"/v2/{NAME}/referrers/{{digest}}", listings.referrers, methods=["GET"]),
        Route("/healthz", base.healthz, methods=["GET"]),
        Route("/readyz", base.readyz, methods=["GET"]),
    ]


def token_routes() -> list[Route]:
    return [
        Route("/token", token.get_token, methods=["GET"]),
        Route("/token", token.post_token, methods=["POST"]),
    ]


def osv_routes() -> list[Route]:
    """The OSV advisory API (public: see http/access.py)."""
    return [
        Route("/v1/query", osv.query, methods=["POST"]),
        Route("/v1/querybatch", osv.query_batch, methods=["POST"]),
    ]
