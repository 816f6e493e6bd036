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


@pytest.mark.parametrize(
    ("variable", "meant"),
    [
        ("GRISTMILL_BUSS__BACKEND", "GRISTMILL_BUS__BACKEND"),
        ("GRISTMILL_BUS__BACKEDN", "GRISTMILL_BUS__BACKEND"),
        ("GRISTMILL_HOMEE", "GRISTMILL_HOME"),
    ],
)
def test_a_misspelt_variable_is_an_error_naming_the_one_meant(
    monkeypatch: pytest.MonkeyPatch, variable: str, meant: str
) -> None:
    monkeypatch.setenv(variable, "redis")
    with pytest.raises(ConfigError, match=f"{variable}: names no setting; did you mean {meant}\\?"):
        load_settings()


def test_a_variable_like_no_setting_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRISTMILL_ZZZ", "1")
    with pytest.raises(ConfigError, match="GRISTMILL_ZZZ: names no setting; see the README"):
        load_settings()


def test_a_misspelt_key_in_the_file_names_the_one_meant(tmp_path: Path) -> None:
    (tmp_path / "gristmill.toml").write_text('hme = "x"\n[buss]\nbackend = "redis"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "  buss: unknown key; did you mean bus?" in str(caught.value)
    assert "  hme: unknown key; did you mean home?" in str(caught.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('home = "café"\n'.encode("latin-1"), r"byte 0xe9 at offset 11 \(line 1, perhaps Latin-1"),
        ('home = "x"\n'.encode("utf-16"), r"byte 0xff at offset 0 \(line 1, perhaps UTF-16\)"),
    ],
)
def test_a_settings_file_not_in_utf8_is_named(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "gristmill.toml").write_bytes(content)
    with pytest.raises(ConfigError, match=r"^gristmill\.toml is not UTF-8 text: " + message):
        load_settings()


def test_a_variable_that_does_not_parse_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRISTMILL_BUS", "{not json")
    with pytest.raises(ConfigError, match="check the GRISTMILL_\\* variables"):
        load_settings()
