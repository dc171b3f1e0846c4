from pathlib import Path

import pytest

from router.errors import ConfigError
from router.settings import Settings, load_settings


def test_defaults_without_env_or_file() -> None:
    settings = load_settings(environ={})
    assert settings == Settings(cache_dir=settings.cache_dir)
    assert settings.uses_local_model


def test_env_overrides_file_and_types_are_coerced(tmp_path: Path) -> None:
    config = tmp_path / "s.toml"
    config.write_text('[sleeptime]\nport = 9000\nupstream_url = "http://file"\nlocal_ctx = 2048\n')
    env = {"SLEEPTIME_PORT": "9100", "SLEEPTIME_UPSTREAM_TIMEOUT_S": "2.5", "OTHER_PORT": "1"}
    settings = load_settings(config, environ=env)
    assert settings.port == 9100
    assert settings.upstream_timeout_s == 2.5
    assert settings.upstream_url == "http://file"
    assert settings.local_ctx == 2048
    assert not settings.uses_local_model


def test_config_path_from_env_and_top_level_keys(tmp_path: Path) -> None:
    config = tmp_path / "s.toml"
    config.write_text(f'cache_dir = "{tmp_path}/c"\n')
    settings = load_settings(environ={"SLEEPTIME_CONFIG": str(config)})
    assert settings.cache_dir == tmp_path / "c"


def test_overrides_skip_none() -> None:
    settings = load_settings(environ={"SLEEPTIME_PORT": "9100"}).replace(port=None, host="0.0.0.0")
    assert (settings.port, settings.host) == (9100, "0.0.0.0")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SLEEPTIME_PORT": "eighty"}, "'port'"),
        ({"SLEEPTIME_UPSTREAM_TIMEOUT_S": "soon"}, "upstream_timeout_s"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=env)


def test_unknown_key_in_file_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "s.toml"
    config.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="prot"):
        load_settings(config, environ={})


def test_missing_or_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})
    bad = tmp_path / "bad.toml"
    bad.write_text("port = = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad, environ={})


@pytest.mark.parametrize(
    ("name", "variable"),
    [("mlflow_uri", "MLFLOW_TRACKING_URI"), ("optuna_storage", "OPTUNA_STORAGE")],
)
def test_a_tools_own_variable_is_the_default_ours_override_it(
    name: str, variable: str, tmp_path: Path
) -> None:
    """MLflow's and Optuna's variables hold for every project; ours are about this one."""
    assert getattr(load_settings(environ={variable: "from-tool"}), name) == "from-tool"
    config = tmp_path / "s.toml"
    config.write_text(f'{name} = "from-file"\n')
    assert getattr(load_settings(config, environ={variable: "from-tool"}), name) == "from-file"
    ours = {variable: "from-tool", f"SLEEPTIME_{name.upper()}": "from-ours"}
    assert getattr(load_settings(environ=ours), name) == "from-ours"
    assert getattr(load_settings(environ={variable: ""}), name) == getattr(Settings(), name)
