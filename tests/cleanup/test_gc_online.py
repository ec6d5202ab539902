"""Online garbage collection loses nothing: GC runs in a loop while clients push.

Eight clients push 200 images that share layers, HEAD-ing each blob first and skipping
the upload when it exists (as docker and podman do: the race that loses layers in
registries whose collector runs during pushes). Every fifth image is deleted right after
its push, so there is real garbage, shared layers included. Meanwhile a separate process
collects garbage over and over with no grace period and untagged-manifest deletion on,
the harshest settings. A push that the registry refuses (MANIFEST_BLOB_UNKNOWN, when a
collection took a blob between the HEAD and the manifest) is retried, as a user would.

Afterwards: every acknowledged, undeleted image is pullable byte for byte, every blob it
names is digest-correct, and a final collection leaves exactly the referenced blobs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from tests.conftest import LiveRegistry, scaleout_environment

from cargohold.config import Settings
from cargohold.core.gc import GarbageCollector, GcOptions
from cargohold.stores import Stores, open_stores

IMAGES = 200
CLIENTS = 8
SHARED_LAYERS = [f"shared layer {n} ".encode() * (200 + n) for n in range(12)]
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
HARSH = GcOptions(
    grace=timedelta(0),
    delete_untagged=True,
    history_window=timedelta(0),
    upload_max_age=timedelta(hours=1),
)
# With no grace at all a push must win a race against every collection between its first
# blob and its manifest. Pushes on the embedded store take milliseconds and mostly win;
# through moto's S3 emulator they take seconds and would never win, so that run gives
# pushes the grace a real deployment gives them (hours, by default) in miniature.
PAUSE_BETWEEN_COLLECTIONS = 0.05
# After a refused push the collector leaves a longer gap, as a retrying client would see
# between scheduled collections: at grace 0 on a loaded machine (CI runs three test files
# at once on two cores) a push can take longer than the short pause, and would lose every
# time. The races stay: each gap ends with a collection that takes what is not yet named.
PAUSE_AFTER_A_REFUSAL = 2.0
GRACE = {"embedded": timedelta(0), "scaleout-2-replicas": timedelta(seconds=20)}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Image:
    number: int
    blobs: dict[str, bytes]
    manifest: bytes
    deleted: bool = False
    attempts: int = 0

    @property
    def tag(self) -> str:
        return f"img-{self.number}"


def make_image(number: int, rng: random.Random) -> Image:
    config = json.dumps({"image": number}).encode()
    layers = [*rng.sample(SHARED_LAYERS, 3), f"own layer {number}".encode() * 50]
    descriptor = [
        {"mediaType": "application/octet-stream", "digest": sha(x), "size": len(x)} for x in layers
    ]
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha(config),
                "size": len(config),
            },
            "layers": descriptor,
        }
    ).encode()
    return Image(number, {sha(x): x for x in [config, *layers]}, manifest)


@dataclass
class Setup:
    urls: list[str]
    stores: Stores
    options: GcOptions
    repository: str = "team/gc"
    errors: list[str] = field(default_factory=list)
    refused: threading.Event = field(default_factory=threading.Event)


def push(urls: list[str], repository: str, image: Image, refused: threading.Event) -> None:
    """Push like docker: HEAD each blob, upload the missing ones, PUT the manifest;
    start over (a new push) when the registry refuses the manifest, which `refused`
    tells the collector."""
    for attempt in range(1, 31):
        image.attempts = attempt
        with httpx.Client(timeout=60) as http:
            base = random.choice(urls)
            for digest, data in image.blobs.items():
                head = http.head(f"{base}/v2/{repository}/blobs/{digest}")
                if head.status_code == 200:
                    continue
                assert head.status_code == 404, head.text
                posted = http.post(
                    f"{random.choice(urls)}/v2/{repository}/blobs/uploads/",
                    params={"digest": digest},
                    content=data,
                )
                assert posted.status_code == 201, posted.text
            put = http.put(
                f"{random.choice(urls)}/v2/{repository}/manifests/{image.tag}",
                content=image.manifest,
                headers={"Content-Type": MANIFEST},
            )
            if put.status_code == 201:
                return
            assert put.status_code == 400, put.text
            assert put.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN", put.text
            refused.set()
    raise AssertionError(f"{image.tag} was refused 30 times")


def run_scenario(setup: Setup, seed: int) -> tuple[list[Image], int]:
    rng = random.Random(seed)
    images = [make_image(n, rng) for n in range(IMAGES)]
    queue = list(images)
    lock = threading.Lock()
    stop = threading.Event()
    collections = 0

    def client() -> None:
        while True:
            with lock:
                if not queue:
                    return
                image = queue.pop()
            try:
                push(setup.urls, setup.repository, image, setup.refused)
                if image.number % 5 == 0:
                    gone = httpx.delete(
                        f"{setup.urls[0]}/v2/{setup.repository}/manifests/{image.tag}", timeout=60
                    )
                    assert gone.status_code == 202, gone.text
                    image.deleted = True
            except Exception as exc:  # collected and reported by the test
                setup.errors.append(f"{image.tag}: {exc!r}")

    def collector() -> None:
        nonlocal collections
        gc = GarbageCollector(setup.stores.meta, setup.stores.blobs)
        while not stop.is_set():
            try:
                gc.run(setup.options)
                collections += 1
            except Exception as exc:
                setup.errors.append(f"gc: {exc!r}")
                return
            # A breath between collections: back to back, a collection (about 20 ms on
            # SQLite) starts inside nearly every push's window between its blobs and its
            # manifest, and at grace 0 a push could lose 30 times in a row.
            if setup.refused.is_set():
                setup.refused.clear()
                stop.wait(PAUSE_AFTER_A_REFUSAL)
            else:
                stop.wait(PAUSE_BETWEEN_COLLECTIONS)

    gc_thread = threading.Thread(target=collector)
    gc_thread.start()
    clients = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    stop.set()
    gc_thread.join()
    return images, collections


def verify(setup: Setup, images: list[Image]) -> None:
    with httpx.Client(timeout=60) as http:
        for image in images:
            for url in setup.urls:
                got = http.get(
                    f"{url}/v2/{setup.repository}/manifests/{image.tag}",
                    headers={"Accept": MANIFEST},
                )
                if image.deleted:
                    assert got.status_code == 404, image.tag
                    continue
                assert got.status_code == 200, f"{image.tag}: {got.text}"
                assert got.content == image.manifest
                for digest, data in image.blobs.items():
                    blob = http.get(f"{url}/v2/{setup.repository}/blobs/{digest}")
                    assert blob.status_code == 200, f"{image.tag} lost {digest}"
                    assert sha(blob.content) == digest and blob.content == data


def _settings(env: dict[str, str], data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=env.get("CARGOHOLD_DATABASE_URL"),
        storage_url=env.get("CARGOHOLD_STORAGE_URL"),
        redis_url=env.get("CARGOHOLD_REDIS_URL"),
        redis_prefix=env.get("CARGOHOLD_REDIS_PREFIX", "cargohold"),
    )


@pytest.fixture
def setup(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Setup]:
    with ExitStack() as stack:
        env: dict[str, str] = {}
        replicas = 1
        if request.param.startswith("scaleout"):
            env = scaleout_environment(stack)
            replicas = 2
            for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                monkeypatch.setenv(name, env[name])
        data_dir = tmp_path / "data"
        servers = []
        for n in range(replicas):
            server = LiveRegistry(data_dir if n == 0 else tmp_path / f"data{n}", env)
            stack.callback(server.stop)
            servers.append(server)
        stores = open_stores(_settings(env, data_dir))
        stack.callback(stores.close)
        options = dataclasses.replace(HARSH, grace=GRACE[request.param])
        yield Setup([server.url for server in servers], stores, options)


# Five runs in every CI run: embedded four times (each differs: thread timing, layer
# choice), and scale-out once (through moto a run takes over a minute).
RUNS = [("embedded", n) for n in range(1, 5)] + [("scaleout-2-replicas", 1)]


@pytest.mark.parametrize(("setup", "seed"), RUNS, indirect=["setup"])
def test_gc_in_a_loop_during_pushes_loses_nothing(setup: Setup, seed: int) -> None:
    images, collections = run_scenario(setup, seed)
    assert setup.errors == []
    assert collections >= 2, "the collector must have run during the pushes"
    verify(setup, images)
    # With the pushes over, one more collection leaves exactly what live images name.
    GarbageCollector(setup.stores.meta, setup.stores.blobs).run(HARSH)
    live = {d for image in images if not image.deleted for d in image.blobs}
    assert set(setup.stores.blobs.digests()) == live
    verify(setup, images)
    retried = sum(image.attempts > 1 for image in images)
    print(f"{collections} collections, {retried} pushes retried")
