"""The settings file's [[model]] list: parsed into frozen entries, every mistake named."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from policies.cost import ModelPrice
from router.errors import ConfigError
from router.model_list import ModelEntry, default_model, parse_models, routing_by_name
from router.settings import Settings, load_settings

FULL = """
[sleeptime]
port = 9000

[[model]]
name = "fast"
aliases = ["gpt-4o-mini", "quick"]
upstream_url = "https://api.example.com/v1"
upstream_key_env = "EXAMPLE_KEY"
upstream_model = "gpt-4o-mini-2024"
input = 0.15
cached_input = 0.075
output = 0.6
sleep_discount = 0.5
fallbacks = ["backup"]

[[model]]
name = "backup"
upstream_url = "http://127.0.0.1:9/v1"
upstream_key = "sk-literal"
"""


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Settings:
    config = tmp_path / "s.toml"
    config.write_text(text)
    return load_settings(config, environ=env or {})


def test_a_full_list_is_parsed_into_frozen_entries(tmp_path: Path) -> None:
    settings = load(tmp_path, FULL, {"EXAMPLE_KEY": "sk-from-env"})
    fast, backup = settings.model_list
    assert settings.port == 9000  # the [sleeptime] table still counts
    assert fast == ModelEntry(
        name="fast",
        upstream_model="gpt-4o-mini-2024",
        aliases=("gpt-4o-mini", "quick"),
        upstream_url="https://api.example.com/v1",
        upstream_key="sk-from-env",
        price=ModelPrice(input=0.15, output=0.6, cached_input=0.075, sleep_discount=0.5),
        fallbacks=("backup",),
    )
    assert (backup.upstream_model, backup.upstream_key, backup.price) == (
        "backup",
        "sk-literal",
        None,
    )
    assert "sk-from-env" not in repr(fast)  # a key never reaches a log line through repr
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.name = "other"  # type: ignore[misc]
    assert default_model(settings.model_list) is fast


def test_no_list_leaves_the_flat_settings_alone(tmp_path: Path) -> None:
    settings = load(tmp_path, 'upstream_url = "http://u/v1"\nmodels = "a,b"\n')
    assert settings.model_list == ()
    assert (settings.upstream_url, settings.models) == ("http://u/v1", "a,b")


def test_top_level_and_nested_tables_alike(tmp_path: Path) -> None:
    top = load(tmp_path, '[[model]]\nname = "a"\n')
    nested = load(tmp_path, '[sleeptime]\nport = 1\n[[sleeptime.model]]\nname = "a"\n')
    assert top.model_list == nested.model_list == (ModelEntry("a", "a"),)


def test_the_default_is_the_one_aliased_sleeptime(tmp_path: Path) -> None:
    entries = parse_models([{"name": "a"}, {"name": "b", "aliases": ["sleeptime"]}], {})
    assert default_model(entries).name == "b"


def test_route_opts_every_name_of_an_entry_in_or_out() -> None:
    """The alias "sleeptime" is routed unless the default entry says off; other names only
    where their entry says policy."""
    entries = parse_models(
        [{"name": "a", "aliases": ["x"], "route": "policy"}, {"name": "b"}, {"name": "c"}], {}
    )
    assert routing_by_name(entries) == {"a": "policy", "x": "policy", "sleeptime": "policy"}
    off = parse_models([{"name": "a", "route": "off"}, {"name": "b", "route": "policy"}], {})
    assert routing_by_name(off) == {"a": "off", "b": "policy", "sleeptime": "off"}
    assert routing_by_name(()) == {"sleeptime": "policy"}


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ([{"name": "a", "imput": 1}], r"model 'a': unknown key\(s\) imput"),
        ([{"name": "a"}, {"aliases": ["x"]}], "model #2: 'name' is required"),
        ([{"name": "a"}, {"name": "a"}], r"model 'a' \(entry #2\): 'a' already names model 'a'"),
        (
            [{"name": "a", "aliases": ["x"]}, {"name": "b", "aliases": ["x"]}],
            r"model 'b' \(entry #2\): 'x' already names model 'a'",
        ),
        ([{"name": "a", "fallbacks": ["nope"]}], "model 'a': fallback 'nope' names no model"),
        ([{"name": "a", "fallbacks": ["a"]}], r"model 'a': .*cycle \(a -> a\)"),
        (
            [{"name": "a", "fallbacks": ["b"]}, {"name": "b", "fallbacks": ["a"]}],
            r"cycle \(a -> b -> a\)",
        ),
        ([{"name": "a", "upstream_key_env": "MISSING"}], "model 'a': .*MISSING"),
        ([{"name": "a", "upstream_key_env": "K", "upstream_key": "k"}], "not both"),
        ([{"name": "a", "input": 1.0}], "model 'a': a price needs both"),
        ([{"name": "a", "input": -1, "output": 1}], "model 'a': 'input' must be a number"),
        ([{"name": "a", "output": "cheap", "input": 1}], "'output' must be a number"),
        ([{"name": "a", "upstream_url": "api.example.com"}], "must start with http"),
        ([{"name": "a", "aliases": "x"}], "'aliases' must be a list"),
        ([{"name": 5}], "model #1: 'name' must be a string"),
        ([{"name": "a", "route": "always"}], "model 'a': 'route' must be one of policy, off"),
        ({"name": "a"}, "array of tables"),
    ],
)
def test_a_bad_entry_is_a_config_error_naming_it(tables: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_models(tables, {})


def test_a_bad_list_in_a_file_stops_loading(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"model 'fast': .*EXAMPLE_KEY"):
        load(tmp_path, FULL)  # the key's variable is not set


def test_the_list_cannot_come_from_the_environment() -> None:
    with pytest.raises(ConfigError, match="array of tables"):
        load_settings(environ={"SLEEPTIME_MODEL_LIST": "fast"})
