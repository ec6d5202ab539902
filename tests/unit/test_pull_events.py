"""Pull events: recorded (in the background) only where an enabled webhook wants them."""

from __future__ import annotations

import time
from pathlib import Path

from cargohold.events import EventLog
from cargohold.events import pulls as pulls_module
from cargohold.events.pulls import PullEvents
from cargohold.secretbox import SecretBox
from cargohold.storage.meta import schema
from cargohold.storage.meta.sqlbase import create_sql_engine
from cargohold.webhooks.store import WebhookStore

DIGEST = "sha256:" + "a" * 64


def test_pulls_are_recorded_only_for_subscribed_namespaces(tmp_path: Path, monkeypatch):
    engine = create_sql_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    schema.upgrade(engine)
    hooks = WebhookStore(engine, SecretBox(tmp_path / "secrets.key"))
    hooks.create("team", "http://127.0.0.1:9/hook", "s", ["pull", "push"])
    hooks.create("quiet", "http://127.0.0.1:9/hook", "s", ["push"])
    off = hooks.create("off", "http://127.0.0.1:9/hook", "s", ["pull"], enabled=False)
    recorder = PullEvents(engine)

    recorder.pulled("team/app", "1.0", DIGEST, "application/vnd.oci.image.manifest.v1+json", "bob")
    recorder.pulled("team/app", DIGEST, DIGEST, "application/vnd.oci.image.manifest.v1+json", None)
    recorder.pulled("quiet/app", "1.0", DIGEST, "application/vnd.oci.image.manifest.v1+json", "x")
    recorder.pulled("off/app", "1.0", DIGEST, "application/vnd.oci.image.manifest.v1+json", "x")
    recorder.flush()
    events = EventLog(engine).after(0)
    assert [(e.type, e.repository, e.tag, e.actor) for e in events] == [
        ("pull", "team/app", "1.0", "bob"),
        ("pull", "team/app", None, None),
    ]
    assert all(e.digest == DIGEST and e.namespace == "team" for e in events)

    # Subscriptions are re-read after the cache's TTL.
    monkeypatch.setattr(pulls_module, "SUBSCRIBERS_TTL", 0.05)
    hooks.update("off", off.id, enabled=True)
    time.sleep(0.1)
    recorder.pulled("off/app", "2.0", DIGEST, "application/vnd.oci.image.manifest.v1+json", "x")
    recorder.flush()
    assert [e.repository for e in EventLog(engine).after(events[-1].id)] == ["off/app"]
    engine.dispose()
