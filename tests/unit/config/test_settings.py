"""Settings precedence and errors: defaults < gristmill.toml < GRISTMILL_* env < overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.config.settings import load_settings
from gristmill.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("GRISTMILL_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_embedded_stack() -> None:
    settings = load_settings()
    assert settings.bus.backend == "sqlite"
    assert settings.metadata.backend == "sqlite"
    assert settings.bus_url() == str(Path(".gristmill") / "bus.db")
    assert settings.metadata_url() == "sqlite:///.gristmill/metadata.db"
    assert settings.raw_url() == ".gristmill/raw"


def test_file_then_env_then_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "gristmill.toml").write_text(
        '[bus]\nbackend = "nats"\nnamespace = "fromfile"\nmax_attempts = 7\n'
    )
    assert load_settings().bus.backend == "nats"
    monkeypatch.setenv("GRISTMILL_BUS__BACKEND", "redis")
    settings = load_settings()
    assert (settings.bus.backend, settings.bus.namespace, settings.bus.max_attempts) == (
        "redis",
        "fromfile",
        7,
    )
    settings = load_settings(overrides={"bus": {"backend": "sqlite"}})
    assert settings.bus.backend == "sqlite"
    assert settings.bus.namespace == "fromfile"  # deep-merged, not replaced


def test_unknown_backend_names_the_key_and_lists_known(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRISTMILL_BUS__BACKEND", "redsi")
    with pytest.raises(ConfigError, match=r"bus\.backend.*'redsi'.*known: sqlite, redis, nats"):
        load_settings()


def test_unknown_key_in_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "gristmill.toml").write_text('[bus]\nbackedn = "redis"\n')
    with pytest.raises(ConfigError, match=r"bus\.backedn"):
        load_settings()


def test_explicit_missing_file_is_an_error() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings("nope.toml")
