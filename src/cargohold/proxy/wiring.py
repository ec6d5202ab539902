"""Build the pull-through cache from the settings (the HTTP side is http/mirror.py)."""

from __future__ import annotations

from cargohold.config import Settings
from cargohold.proxy.secrets import SecretBox
from cargohold.proxy.service import ProxyService
from cargohold.proxy.store import ProxyStore
from cargohold.stores import Stores


def open_proxy(settings: Settings, stores: Stores) -> ProxyService:
    return ProxyService(
        ProxyStore(stores.engine),
        stores.meta,
        stores.blobs,
        SecretBox(settings.secrets_key_path),
        settings.max_manifest_size,
        spool_dir=settings.data_dir / "proxy-spool",
    )
