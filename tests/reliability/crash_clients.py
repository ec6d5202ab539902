"""Client threads that push to a registry that may be SIGKILLed at any moment.

Each client loops over the push kinds (single-POST monolithic, POST then PUT, chunked
PATCHes, cross-repository mounts, images with manifests and extra tags) and writes to a
Ledger what the server acknowledged and what a broken connection left in doubt. An upload
session broken by a crash is taken up again after the restart: GET on its URL must either
give the offset to continue from (never less than the client saw acknowledged) or fail
with the spec's BLOB_UPLOAD_UNKNOWN; the push then continues from that offset.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import traceback
from dataclasses import dataclass

import httpx
from tests.reliability.crash_ledger import BlobPush, Ledger, ManifestPush

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
# Recovery of one broken session gives up after this many further crashes.
MAX_RECOVERIES = 8


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def error_code(response: httpx.Response) -> str | None:
    """The first OCI error code of a response, None if the body is not the spec's envelope."""
    try:
        return str(response.json()["errors"][0]["code"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


class Interrupted(Exception):
    """The connection broke: the server was killed, or is down."""


class Violation(Exception):
    """The server broke a promise; the Ledger already holds the details."""


class SessionRefused(Exception):
    """A session broken by a crash is refused with the spec's error: the push starts over."""


class Target:
    """The URL of the server that is up; clients wait here while it is down."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._url: str | None = None

    def up(self, url: str) -> None:
        with self._changed:
            self._url = url
            self._changed.notify_all()

    def down(self) -> None:
        with self._changed:
            self._url = None

    def wait_url(self, stop: threading.Event) -> str | None:
        with self._changed:
            while self._url is None and not stop.is_set():
                self._changed.wait(0.1)
            return self._url


@dataclass
class Session:
    repository: str
    location: str
    data: bytes
    acknowledged: int  # bytes the server confirmed holding (Range of its last 202)
    recovered: bool = False  # taken up again after a crash


@dataclass(frozen=True, slots=True)
class BlobSizes:
    small_max: int = 64 * 1024
    large_share: float = 0.05  # share of blobs of a few MiB, so kills land mid-body
    large_max: int = 6 * 1024 * 1024


class CrashClient:
    def __init__(
        self,
        index: int,
        target: Target,
        ledger: Ledger,
        stop: threading.Event,
        seed: int,
        sizes: BlobSizes,
        stale_locks: bool = False,
    ) -> None:
        self.index = index
        self.target = target
        self.ledger = ledger
        self.stop = stop
        self.rng = random.Random(seed)
        self.sizes = sizes
        # Whether a writer killed mid-request may leave its session locked (the scale-out
        # S3 store's locks expire after an hour; a file's flock dies with its process).
        self.stale_locks = stale_locks
        self.http = httpx.Client(timeout=30)
        self.counter = 0

    # -- plumbing
    def run(self) -> None:
        kinds = [
            (self.push_single_post, 2),
            (self.push_post_put, 2),
            (self.push_chunked, 3),
            (self.push_mount, 2),
            (self.push_image, 3),
        ]
        actions, weights = zip(*kinds, strict=True)
        try:
            while not self.stop.is_set():
                action = self.rng.choices(actions, weights)[0]
                try:
                    action()
                except (Interrupted, Violation):
                    pass
                except Exception:  # a missing header or a body that is not JSON
                    self.ledger.violation(f"client {self.index}: {traceback.format_exc()}")
        finally:
            self.http.close()

    def request(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        url = self.target.wait_url(self.stop)
        if url is None:
            raise Interrupted("stopping")
        try:
            response = self.http.request(method, url + path, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError as exc:
            raise Interrupted(repr(exc)) from exc
        if response.status_code >= 500:
            self.fail(f"{method} {path}", response)
        return response

    def fail(self, what: str, response: httpx.Response) -> None:
        self.ledger.violation(
            f"client {self.index}: {what} -> {response.status_code} {response.text[:300]!r}"
        )
        raise Violation(what)

    def expect(self, response: httpx.Response, status: int, what: str) -> None:
        if response.status_code != status:
            self.fail(f"{what} (wanted {status})", response)

    def repository(self) -> str:
        return f"crash/c{self.index}-{self.rng.randrange(3)}"

    def blob(self) -> bytes:
        if self.rng.random() < self.sizes.large_share:
            size = self.rng.randrange(1024 * 1024, self.sizes.large_max)
        else:
            size = self.rng.randrange(1, self.sizes.small_max)
        # A unique prefix makes every push a new blob, so no push hides another.
        self.counter += 1
        return f"{self.index}:{self.counter}:".encode() + self.rng.randbytes(size)

    # -- blob pushes; each returns the acknowledged push, or None if it ended in doubt
    def push_single_post(self, repository: str | None = None) -> BlobPush:
        return self.post_whole(repository or self.repository(), self.blob(), "single-post")

    def post_whole(self, repository: str, data: bytes, how: str) -> BlobPush:
        """A blob in one POST ?digest=; recorded acknowledged, or in doubt if cut off."""
        push = BlobPush(repository, sha256(data), data, how)
        try:
            response = self.request(
                "POST",
                f"/v2/{repository}/blobs/uploads/",
                params={"digest": push.digest},
                content=data,
            )
        except Interrupted:
            self.ledger.blob_in_doubt(push)
            raise
        self.acknowledge_blob(push, response)
        return push

    def push_post_put(self, repository: str | None = None) -> BlobPush | None:
        return self._session_push(repository, "post-put", chunks=0)

    def push_chunked(self, repository: str | None = None) -> BlobPush | None:
        return self._session_push(repository, "chunked", chunks=self.rng.randint(2, 4))

    def push_mount(self, repository: str | None = None) -> BlobPush | None:
        source = self.ledger.pick_acknowledged_blob(self.rng.randrange(1 << 30))
        repository = repository or self.repository()
        if source is None or source.repository == repository:
            return self.push_single_post(repository)
        push = BlobPush(repository, source.digest, source.data, "mount")
        try:
            response = self.request(
                "POST",
                f"/v2/{repository}/blobs/uploads/",
                params={"mount": source.digest, "from": source.repository},
            )
        except Interrupted:
            self.ledger.blob_in_doubt(push)
            raise
        # The source's blob was acknowledged, so a crash must not have made it unmountable.
        self.acknowledge_blob(push, response)
        return push

    def acknowledge_blob(self, push: BlobPush, response: httpx.Response) -> None:
        self.expect(response, 201, f"{push.how} push of {push.digest} to {push.repository}")
        if response.headers.get("docker-content-digest") != push.digest:
            self.fail("201 with another Docker-Content-Digest", response)
        self.ledger.acknowledged_blob(push)

    def _session_push(self, repository: str | None, how: str, chunks: int) -> BlobPush | None:
        repository = repository or self.repository()
        data = self.blob()
        push = BlobPush(repository, sha256(data), data, how)
        try:
            response = self.request("POST", f"/v2/{repository}/blobs/uploads/")
        except Interrupted:
            self.ledger.blob_in_doubt(push)  # a session may exist; the client never knew it
            raise
        self.expect(response, 202, f"POST to start an upload in {repository}")
        session = Session(repository, response.headers["location"], data, 0)
        for _ in range(MAX_RECOVERIES):
            try:
                response = self._send_rest(session, push.digest, chunks)
            except Interrupted:
                if not self._recover(session):
                    self.ledger.blob_in_doubt(push)
                    return None
                continue
            except SessionRefused:
                self.ledger.blob_in_doubt(push)
                return None
            self.acknowledge_blob(push, response)
            return push
        self.ledger.blob_in_doubt(push)
        return None

    def _send_rest(self, session: Session, digest: str, chunks: int) -> httpx.Response:
        """PATCH what the server lacks in `chunks` pieces, then the closing PUT."""
        data, start = session.data, session.acknowledged
        if chunks:
            step = max(1, -(-len(data) // chunks))
            while start < len(data):
                piece = data[start : start + step]
                response = self.request(
                    "PATCH",
                    session.location,
                    content=piece,
                    headers={
                        "Content-Range": f"{start}-{start + len(piece) - 1}",
                        "Content-Type": "application/octet-stream",
                    },
                )
                self._refused(session, response)
                self.expect(response, 202, f"PATCH at {start}")
                if response.headers.get("range") != f"0-{start + len(piece) - 1}":
                    self.fail(f"PATCH at {start}: wrong Range", response)
                start += len(piece)
                session.acknowledged = start
            body = b""
        else:
            body = data[start:]
        headers = {"Content-Type": "application/octet-stream"}
        if body:
            headers["Content-Range"] = f"{start}-{len(data) - 1}"
        response = self.request(
            "PUT", session.location, params={"digest": digest}, content=body, headers=headers
        )
        self._refused(session, response)
        return response

    def _refused(self, session: Session, response: httpx.Response) -> None:
        """A recovered session still locked by the killed writer fails with the spec's 416."""
        if (
            self.stale_locks
            and session.recovered
            and response.status_code == 416
            and error_code(response) == "BLOB_UPLOAD_INVALID"
        ):
            self.ledger.session_refused()
            raise SessionRefused(session.location)

    def _recover(self, session: Session) -> bool:
        """After a crash: True if the session continues (offset updated), False if gone."""
        for _ in range(MAX_RECOVERIES):
            try:
                response = self.request("GET", session.location)
            except Interrupted:
                continue
            if response.status_code == 404:
                if error_code(response) != "BLOB_UPLOAD_UNKNOWN":
                    self.fail("GET on a lost upload: not BLOB_UPLOAD_UNKNOWN", response)
                self.ledger.session_gone()
                return False
            self.expect(response, 204, "GET on an upload after a crash")
            end = response.headers["range"].partition("-")[2]
            offset = 0 if response.headers["range"] == "0-0" else int(end) + 1
            if not session.acknowledged <= offset <= len(session.data):
                self.fail(
                    f"upload holds {offset} bytes; {session.acknowledged} were acknowledged "
                    f"of {len(session.data)}",
                    response,
                )
            session.acknowledged = offset
            session.recovered = True
            self.ledger.session_resumed()
            return True
        return False

    # -- images: config and layers, then a manifest under a new tag, sometimes a second tag
    def push_image(self) -> None:
        repository = self.repository()
        layer_pushes = [
            self.push_single_post,
            self.push_post_put,
            self.push_chunked,
            self.push_mount,
        ]
        layers: list[BlobPush] = []
        for _ in range(self.rng.randint(1, 2)):
            layer = self.rng.choice(layer_pushes)(repository)
            if layer is None:
                return
            layers.append(layer)
        self.counter += 1
        config_data = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
                "created_by": f"crash client {self.index} image {self.counter}",
            }
        ).encode()
        config = self.post_whole(repository, config_data, "config")
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": OCI_CONFIG,
                    "digest": config.digest,
                    "size": len(config_data),
                },
                "layers": [
                    {"mediaType": OCI_LAYER, "digest": layer.digest, "size": len(layer.data)}
                    for layer in layers
                ],
            }
        ).encode()
        tags = [f"t{self.index}-{self.counter}"]
        if self.rng.random() < 0.4:
            tags.append(f"t{self.index}-{self.counter}-again")
        for tag in tags:
            self._put_manifest(ManifestPush(repository, tag, sha256(body), body, OCI_MANIFEST))

    def _put_manifest(self, push: ManifestPush) -> None:
        try:
            response = self.request(
                "PUT",
                f"/v2/{push.repository}/manifests/{push.tag}",
                content=push.body,
                headers={"Content-Type": push.media_type},
            )
        except Interrupted:
            self.ledger.manifest_in_doubt(push)
            raise
        self.expect(response, 201, f"manifest PUT {push.repository}:{push.tag}")
        if response.headers.get("docker-content-digest") != push.digest:
            self.fail("manifest 201 with another Docker-Content-Digest", response)
        self.ledger.acknowledged_manifest(push)
