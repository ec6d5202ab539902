"""A moto S3 server on loopback for the S3 backend's tests.

The fake credentials live in the boto3 client only: nothing is written to os.environ.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config

from cargohold.storage.blobs.locks import UploadLocks
from cargohold.storage.blobs.s3 import S3BlobStore

REGION = "us-east-1"


@contextmanager
def moto_server() -> Iterator[str]:
    """Run moto's S3 in a thread on 127.0.0.1 (a free port); yield its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard"}),
    )


@contextmanager
def scratch_bucket(endpoint: str) -> Iterator[tuple[Any, str]]:
    """A new, empty bucket for one test; emptied and removed afterwards."""
    client = s3_client(endpoint)
    bucket = f"cargohold-test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    try:
        yield client, bucket
    finally:
        with contextlib.suppress(Exception):
            for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", ()):
                client.abort_multipart_upload(
                    Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
            paginator = client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", ())]
                if keys:
                    client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
            client.delete_bucket(Bucket=bucket)
        client.close()


@contextmanager
def scratch_s3_store(
    endpoint: str, prefix: str = "registry", locks: UploadLocks | None = None
) -> Iterator[S3BlobStore]:
    with scratch_bucket(endpoint) as (client, bucket):
        yield S3BlobStore(bucket, prefix, client, locks=locks)
