"""One typed configuration, read by every command: flags > CARGOHOLD_* env > YAML file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

CONFIG_ENV = "CARGOHOLD_CONFIG"


class ConfigError(Exception):
    """The configuration cannot be used; the message says what to change."""


def _default_workers() -> int:
    return max(2, os.cpu_count() or 1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARGOHOLD_", extra="forbid")

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(5000, ge=0, le=65535, description="TCP port to listen on.")
    tls_cert: Path | None = Field(
        None,
        description="PEM certificate (chain) file: serve HTTPS instead of HTTP. Needs tls_key.",
    )
    tls_key: Path | None = Field(None, description="PEM private key file of tls_cert.")
    hsts_seconds: int = Field(
        0,
        ge=0,
        description="With TLS, send Strict-Transport-Security with this max-age so browsers "
        "and clients keep to HTTPS (0: no header). Only set it once HTTPS is there to stay.",
    )
    data_dir: Path = Field(Path("data"), description="Folder for the embedded database and blobs.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the metadata database (default: SQLite in data_dir)."
    )
    storage_url: str | None = Field(
        None,
        description="Blob storage: file:///path, or s3://bucket/prefix?endpoint=URL&region=R "
        "with AWS_* credentials (default: data_dir).",
    )
    storage_redirect: bool = Field(
        False,
        description="Send blob GETs to presigned storage URLs (S3) instead of streaming them.",
    )
    database_pool_size: int = Field(
        16,
        ge=1,
        le=500,
        description="Database connections kept open per worker process (as many again for "
        "bursts); replicas x workers x 2 x this must stay below PostgreSQL's max_connections.",
    )
    redis_url: str | None = Field(
        None,
        description="redis://host:6379/0: replicas share lookup caches, upload locks and rate "
        "limits (unset: each process keeps its own, and S3 uploads lock with conditional writes).",
    )
    local_cache_entries: int = Field(
        10_000,
        ge=0,
        description="Embedded setup (SQLite): tag/manifest/blob lookups each process keeps in "
        "memory (0: none). Every write invalidates them at once in every process on the host "
        "(counters shared through a file in data_dir); entries also expire after a minute.",
    )
    redis_cache_ttl: int = Field(
        60,
        ge=0,
        le=86400,
        description="Seconds a cached tag/manifest/blob lookup lives in Redis (0: no cache); "
        "writes invalidate at once, this only bounds staleness while Redis is unreachable.",
    )
    redis_prefix: str = Field(
        "cargohold", min_length=1, description="Key prefix, so registries can share a Redis."
    )
    workers: int = Field(
        default_factory=_default_workers, ge=1, le=64, description="Worker processes (CPUs)."
    )
    max_manifest_size: int = Field(4 * 1024 * 1024, ge=1024, description="Bytes; larger is 413.")
    max_upload_size: int = Field(
        0,
        ge=0,
        description="Largest blob an upload may grow to, in bytes (0: no limit); a larger "
        "upload is refused with 413 SIZE_INVALID and its partial data discarded.",
    )
    max_uploads_per_principal: int = Field(
        0,
        ge=0,
        description="Open upload sessions one user (or anonymous address) may hold at once "
        "(0: no limit); one more is refused with 429 TOOMANYREQUESTS until one ends.",
    )
    request_body_timeout: float = Field(
        60.0,
        gt=0,
        description="Seconds a request body may take, extended by one second for every "
        "request_body_min_rate bytes received; a slower (slowloris) client gets 408.",
    )
    request_body_min_rate: int = Field(
        1024,
        ge=1,
        description="Bytes per second that earn a request body one more second of "
        "request_body_timeout, so large uploads at a sane speed never time out.",
    )
    request_header_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds a request's line and headers may take to arrive (from its "
        "first byte, or from the connection's start); a slower (slowloris) client gets 408.",
    )
    response_send_timeout: float = Field(
        60.0,
        gt=0,
        description="Seconds a client may take no byte of a blob being sent to it before "
        "its connection closes (nginx's send_timeout).",
    )
    keep_alive_timeout: int = Field(
        30,
        ge=1,
        le=3600,
        description="Seconds an idle keep-alive connection stays open between requests.",
    )
    anonymous_pull: bool = Field(True, description="Anyone may pull public repositories.")
    open_registry: bool = Field(
        False,
        description="With no users, allow anonymous push on a non-loopback address too.",
    )
    signing_keys_dir: Path | None = Field(
        None,
        description="Token signing keys (default data_dir/keys); share it between replicas.",
    )
    token_ttl: int = Field(300, ge=60, le=86400, description="Bearer token lifetime (s).")
    token_service: str = Field("cargohold", min_length=1, description="Token audience.")
    session_idle_minutes: int = Field(
        30,
        ge=1,
        le=1440,
        description="Web UI sign-in sessions end after this many minutes without a request.",
    )
    admin_user: str | None = Field(
        None, description="With admin_password: the first admin, created on first start."
    )
    admin_password: SecretStr | None = Field(
        None, description="Password of admin_user (only used while no user exists)."
    )
    rate_limit_per_minute: int = Field(
        0, ge=0, description="Requests per minute per user or address on /v2 (0: no limit)."
    )
    failed_login_limit: int = Field(
        10, ge=0, description="Failed logins per address in 5 minutes before a pause (0: off)."
    )
    gc_interval_minutes: float = Field(
        0,
        ge=0,
        description="Every N minutes while serving, apply retention policies, then collect "
        "garbage (0: only when asked, by `cargohold retention run`, `cargohold gc` or the "
        "admin API).",
    )
    gc_grace_hours: float = Field(
        24.0,
        ge=0,
        description="Unreferenced blobs, links and manifests younger than this are kept: "
        "longer than the slowest push (a push uploads layers before its manifest).",
    )
    gc_delete_untagged: bool = Field(
        False,
        description="Garbage collection also removes manifests no tag, index, referrer "
        "subject or recent tag history names.",
    )
    tag_history_keep_days: float = Field(
        14.0,
        ge=0,
        description="Manifests a tag pointed at within this many days survive garbage "
        "collection untagged, so rollback keeps working.",
    )
    upload_max_age_hours: float = Field(
        24.0, gt=0, description="Upload sessions idle this long are removed by garbage collection."
    )
    scan_on_push: bool = Field(
        True,
        description="Queue a vulnerability scan of every pushed image (and of each platform "
        "of an index); the serving process's scan worker runs the queue.",
    )
    scan_workers: int = Field(
        1,
        ge=0,
        description="Scan worker threads in the serving process (0: this replica runs no "
        "scans; the queue waits for another replica or a restart).",
    )
    scan_poll_seconds: float = Field(
        2.0, gt=0, description="How often an idle scan worker looks for queued jobs."
    )
    scan_quiet_seconds: float = Field(
        1.0,
        ge=0,
        description="Scans of pushed images wait until no image was pushed for this long, so "
        "a burst of pushes is scanned after it instead of slowing it (0: scan at once).",
    )
    scan_max_delay_seconds: float = Field(
        60.0,
        gt=0,
        description="The longest a pushed image's scan waits for pushes to pause; after "
        "that it is scanned even while pushes go on.",
    )
    scan_attach_sbom: bool = Field(
        True,
        description="After the first scan of an image, attach its CycloneDX SBOM as an OCI "
        "referrer (artifactType application/vnd.cyclonedx+json).",
    )
    scan_keep_results: int = Field(
        3,
        ge=1,
        description="Scan results kept per image; older ones, and those of deleted images, "
        "are removed by the scheduled cleanup.",
    )
    policy_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="Seconds each server process keeps a namespace's pull policies (scan "
        "and signature) and a refused signature check before reading them again: the "
        "longest a policy change, or a signature pushed after a refusal, takes to apply.",
    )
    webhook_workers: int = Field(
        1,
        ge=0,
        description="Webhook delivery threads in the serving process (0: this replica "
        "sends no webhooks; queued deliveries wait for another replica or a restart).",
    )
    webhook_poll_seconds: float = Field(
        1.0, gt=0, description="How often an idle webhook worker looks for new events."
    )
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, le=300, description="Time a webhook receiver has to answer (s)."
    )
    webhook_backoff_seconds: float = Field(
        10.0,
        gt=0,
        description="First retry delay of a failed webhook delivery; later retries wait "
        "3, 12, 60 and 180 times this, then the delivery is marked failed (6 attempts).",
    )
    webhook_registry_name: str | None = Field(
        None,
        description="The registry's address as webhook payloads name it (`registry`); "
        "default: this host's name and port.",
    )
    replication_workers: int = Field(
        1,
        ge=0,
        description="Replication threads in the serving process (0: this replica runs no "
        "replication; queued executions wait for another replica or a restart).",
    )
    replication_poll_seconds: float = Field(
        2.0, gt=0, description="How often an idle replication worker looks for work."
    )
    replication_backoff_seconds: float = Field(
        30.0,
        gt=0,
        description="First retry delay of a failed replication attempt; later retries wait "
        "4 and 20 times this, then the execution ends failed (4 attempts).",
    )
    replication_timeout_seconds: float = Field(
        60.0, gt=0, le=3600, description="Time a remote registry has to answer a request (s)."
    )
    secrets_key_file: Path | None = Field(
        None,
        description="Key that encrypts stored secrets (webhook secrets); default "
        "keys_dir/secrets.key, created on first use. Replicas must share it.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Least severe log level written."
    )
    access_log: bool = Field(True, description="One JSON line per request, with its ID.")

    @field_validator("storage_url")
    @classmethod
    def _known_storage(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("file://", "s3://")):
            raise ValueError("storage_url must start with file:// or s3://")
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: give both or neither")
        return self

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def keys_dir(self) -> Path:
        return self.signing_keys_dir or self.data_dir / "keys"

    @property
    def secrets_key_path(self) -> Path:
        return self.secrets_key_file or self.keys_dir / "secrets.key"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'meta.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlFileSource(settings_cls))


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by CARGOHOLD_CONFIG (set from --config by the CLI)."""

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get(CONFIG_ENV)
        if not path:
            return {}
        import yaml  # only when there is a config file

        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must be a mapping of settings")
        return {str(key).replace("-", "_"): value for key, value in data.items()}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False


def reference_markdown() -> str:
    """The configuration reference, generated from the typed settings above."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `cargohold.config.Settings` by `cargohold config --reference`;",
        "a test keeps this file in step with the code. Each setting can be a YAML key in the",
        "file given by `--config`, or an environment variable; flags of `serve` win over both.",
        "",
        "| setting | environment | default | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:
            default = "number of CPUs, at least 2" if name == "workers" else "computed"
        elif field.default is None:
            default = "unset"
        else:
            default = f"`{field.default}`"
        env = f"`CARGOHOLD_{name.upper()}`"
        lines.append(f"| `{name}` | {env} | {default} | {field.description or ''} |")
    return "\n".join(lines) + "\n"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; flags given as `overrides` (None = not given) win."""
    if config_file is not None:
        os.environ[CONFIG_ENV] = str(config_file)
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
