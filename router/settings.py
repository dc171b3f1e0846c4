"""One settings object for every command, built explicitly, never at import.

Precedence, lowest to highest: field defaults < the tools' own environment variables
(`MLFLOW_TRACKING_URI`, `OPTUNA_STORAGE`) < TOML file < `SLEEPTIME_*` environment
variables < explicit overrides (CLI flags). The TOML file is `SLEEPTIME_CONFIG` or
`--config`; it is optional.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from router.errors import ConfigError
from router.model_list import ModelEntry, parse_models

ENV_PREFIX = "SLEEPTIME_"
# A tool's own variable, set for every project that uses the tool, is only a default here:
# the settings file and SLEEPTIME_* are about this project and override it.
CONVENTIONS = {"mlflow_uri": "MLFLOW_TRACKING_URI", "optuna_storage": "OPTUNA_STORAGE"}


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sleeptime"


@dataclass(frozen=True)
class Settings:
    # Upstream: an OpenAI-compatible base URL; empty means "start the embedded model".
    upstream_url: str = ""
    upstream_key: str = ""
    upstream_model: str = ""
    upstream_timeout_s: float = 120.0
    upstream_max_retries: int = 3
    # Embedded model, used when no upstream_url is set.
    local_model: str = "qwen2.5-coder-1.5b"
    local_threads: int = 0  # 0: all cores
    local_ctx: int = 8192
    local_parallel: int = 2
    local_start_timeout_s: float = 120.0
    cache_dir: Path = field(default_factory=_default_cache_dir)
    # Proxy.
    host: str = "127.0.0.1"
    port: int = 8000
    # The store, by URL: sqlite:///PATH (the default, from db_path); other engines plug in
    # at router.store.open_store. Empty: sqlite:///<db_path>.
    store_url: str = ""
    db_path: Path | None = None  # None: <cache_dir>/sleeptime.sqlite
    # A shared store's claim on a sleep-time job: another replica may take the job over once
    # its claimer has been silent this long (a live claimer renews it every third of it).
    sleep_lease_s: float = 60.0
    salt_path: Path | None = None  # None: <cache_dir>/tenant-salt
    router: str = "passthrough"  # or "enriched"; `serve --policy` routes by a trained policy
    models: str = ""  # comma-separated names clients may use besides "sleeptime"; empty: any
    # The settings file's [[model]] tables (router.model_list); empty: one upstream, above.
    model_list: tuple[ModelEntry, ...] = ()
    max_body_bytes: int = 8 * 1024 * 1024
    max_context_bytes: int = 256 * 1024  # larger contexts pass through, never stored or slept on
    max_inflight_per_key: int = 64  # one key's concurrent requests; beyond it, 429 + Retry-After
    max_inflight_for_sleep: int = 0  # sleep-time work runs only while at most this many in flight
    # Gateway: a master key turns on client keys (`sleeptime keys`); without one the proxy
    # is in local-only mode (loopback addresses only, each bearer key its own tenant).
    master_key: str = ""
    cors_origins: str = ""  # comma-separated origins that get CORS headers; empty: none
    default_rpm: int = 0  # requests per minute of a key created without its own; 0: unlimited
    default_tpm: int = 0  # tokens per minute, likewise
    # On a shared (PostgreSQL) store, replicas share keys' rpm/tpm and spend through it this
    # often (seconds): a key may overshoot by what other replicas admit within about one
    # interval. 0: each replica limits alone. One process on SQLite never syncs.
    usage_sync_s: float = 1.0
    # Server limits on clients.
    header_timeout_s: float = 10.0  # a request's headers must arrive within this
    body_timeout_s: float = 30.0  # and its body within this
    idle_timeout_s: float = 5.0  # a kept-alive connection with no request is closed after this
    max_client_connections: int = 1024  # open client connections; beyond: refused with 503
    max_header_bytes: int = 16 * 1024  # the request line and headers together; beyond: 431
    max_json_depth: int = 64  # nesting of a JSON body; deeper: 400
    parse_off_loop_bytes: int = 256 * 1024  # bodies larger than this are parsed in a thread
    sleep_enabled: bool = True
    sleep_passes: int = 1  # the sleep budget, until a policy gives one per context
    sleep_prompt: str = "solve"  # a key of router.sleep.TEMPLATES
    sleep_adaptive: bool = False  # sleep_passes is a cap: a context stops once its answers settle
    sleep_reask: bool = False  # passes after the first answer the first pass's questions again
    # Experiments.
    mlflow_uri: str = "sqlite:///mlruns/mlflow.db"
    optuna_storage: str = "mlruns/optuna.journal"  # a journal file, or an RDB URL
    test_token_price_ratio: float = 10.0

    def replace(self, **changes: Any) -> Settings:
        """Apply CLI overrides; None means "flag not given" and keeps the current value."""
        given = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **_coerce_all(given, source="override"))

    @property
    def uses_local_model(self) -> bool:
        return not self.upstream_url


def load_settings(
    config_path: Path | str | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    env = os.environ if environ is None else environ
    path = config_path or env.get(ENV_PREFIX + "CONFIG")
    values: dict[str, Any] = {name: env[var] for name, var in CONVENTIONS.items() if env.get(var)}
    if path:
        values.update(_read_toml(Path(path)))
    if "model" in values:  # [[model]] tables; keys named by upstream_key_env are read now
        values["model_list"] = parse_models(values.pop("model"), env)
    values.update(_from_env(env))
    return Settings(**_coerce_all(values, source=str(path or "environment")))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"settings file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from exc
    # Accept either top-level keys or a [sleeptime] table ([[model]] tables beside it).
    values = dict(data.get("sleeptime", data))
    if "sleeptime" in data and "model" in data:
        if "model" in values:
            raise ConfigError(f"settings file {path}: [[model]] and [[sleeptime.model]] both")
        values["model"] = data["model"]
    return values


def _from_env(env: Mapping[str, str]) -> dict[str, str]:
    names = {f.name for f in fields(Settings)}
    found = {}
    for key, value in env.items():
        name = key[len(ENV_PREFIX) :].lower() if key.startswith(ENV_PREFIX) else None
        if name in names:
            found[name] = value
    return found


def _coerce_all(values: Mapping[str, Any], *, source: str) -> dict[str, Any]:
    hints = typing.get_type_hints(Settings)
    unknown = set(values) - set(hints)
    if unknown:
        raise ConfigError(f"unknown setting(s) in {source}: {', '.join(sorted(unknown))}")
    return {name: _coerce(name, value, hints[name], source) for name, value in values.items()}


def _coerce(name: str, value: Any, hint: Any, source: str) -> Any:
    if name == "model_list":
        return parse_models(value, os.environ)
    target = _base_type(hint)
    try:
        if target is bool and isinstance(value, str):
            return _parse_bool(value)
        if target is Path:
            return Path(value).expanduser()
        return target(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"setting {name!r} from {source}: {value!r} is not a valid {target.__name__}"
        ) from exc


def _base_type(hint: Any) -> type:
    if isinstance(hint, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(text)


def safe_url(url: str) -> str:
    """Scheme, host, port and path: a URL's user, password and query can carry a key."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(not a valid URL)"
    return f"{parts.scheme}://{host}{port}{parts.path}"
