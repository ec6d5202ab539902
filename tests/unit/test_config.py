from __future__ import annotations

from pathlib import Path

import pytest

from cargohold.config import CONFIG_ENV, ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("CARGOHOLD_PORT", "CARGOHOLD_DATA_DIR", CONFIG_ENV):
        monkeypatch.delenv(key, raising=False)


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.port == 5000 and settings.host == "127.0.0.1"
    assert settings.resolved_database_url.startswith("sqlite:///")


def test_flag_beats_env_beats_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"port: 6000\ndata-dir: {tmp_path / 'from-file'}\nworkers: 3\n")
    monkeypatch.setenv("CARGOHOLD_PORT", "7000")
    settings = load_settings(config)
    assert settings.port == 7000
    assert settings.workers == 3
    assert settings.data_dir == tmp_path / "from-file"
    assert load_settings(config, port=8000).port == 8000


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("prot: 5000\n")
    with pytest.raises(ConfigError, match="prot"):
        load_settings(config)


def test_bad_values_are_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARGOHOLD_PORT", "seventy")
    with pytest.raises(ConfigError, match="port"):
        load_settings()
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml")


def test_configuration_reference_is_current() -> None:
    from cargohold.config import Settings, reference_markdown

    document = Path(__file__).parents[2] / "docs" / "configuration.md"
    assert document.read_text() == reference_markdown(), (
        "docs/configuration.md is stale: run `cargohold config --reference > docs/configuration.md`"
    )
    for name in Settings.model_fields:
        assert f"`CARGOHOLD_{name.upper()}`" in document.read_text()
