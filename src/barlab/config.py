"""Configuration: a TOML file plus ``BARLAB_*`` environment overrides; secrets apart.

Where the file comes from, first found: ``$BARLAB_CONFIG``, ``./backtest.toml``, then
``$XDG_CONFIG_HOME/barlab/backtest.toml`` (``~/.config/barlab/backtest.toml``). Every key can be
overridden as ``BARLAB_<SECTION>_<KEY>`` (``BARLAB_RISK_DAILY_LOSS_LIMIT=2000``), and
``BARLAB_DATA_DIR`` / ``BARLAB_REPORTS_DIR`` move the cache and the runs; the vendors' own
``POLYGON_BASE_URL``, ``POLYGON_REQUESTS_PER_MINUTE``, ``APCA_DATA_BASE_URL``,
``APCA_API_BASE_URL`` (the trading host) and ``FINNHUB_BASE_URL`` set those keys too.
Unknown keys and wrong types are errors.

API keys are not configuration: they come only from the environment or a git-ignored ``.env``
file (:func:`secrets`) and are never printed, logged or saved.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from barlab.errors import ConfigError

SECRET_NAMES = ("POLYGON_API_KEY", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "FINNHUB_API_KEY")
SOURCES = ("auto", "demo", "polygon", "alpaca", "finnhub", "import")


@dataclass(frozen=True, slots=True, kw_only=True)
class DataConfig:
    dir: str = "data"
    """The Parquet cache, relative to the working directory."""
    source: str = "auto"
    """Where bars come from: auto (Polygon when POLYGON_API_KEY is set, else the demo market),
    demo, polygon, alpaca, finnhub or import."""
    fallback: list[str] = field(default_factory=list)
    """Failover order for downloads, e.g. ["polygon", "alpaca", "finnhub"]: when a source fails
    for a symbol, the next one fills that symbol's whole series (under its own source)."""
    session: str = "rth"
    """Bars a backtest sees: rth (regular trading hours) or all (extended hours too)."""

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(
                f"data.source must be one of {', '.join(SOURCES)}, got {self.source!r}"
            )
        vendors = ("polygon", "alpaca", "finnhub", "demo")
        bad = [s for s in self.fallback if s not in vendors]
        if bad:
            raise ConfigError(f"data.fallback may list {', '.join(vendors)}; got {bad}")
        if self.session not in ("rth", "all"):
            raise ConfigError(f"data.session must be rth or all, got {self.session!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyConfig:
    symbols: list[str] = field(default_factory=lambda: ["AAPL", "MSFT", "TSLA", "GOOGL"])
    timeframe: str = "1m"
    paths: list[str] = field(default_factory=list)
    """Extra directories searched for strategy files (after ./strategies)."""

    def __post_init__(self) -> None:
        from barlab.bars import TIMEFRAMES

        if self.timeframe not in TIMEFRAMES:
            raise ConfigError(
                f"strategy.timeframe must be one of {', '.join(TIMEFRAMES)}, got {self.timeframe!r}"
            )
        if not self.symbols:
            raise ConfigError("strategy.symbols is empty; list at least one ticker")


@dataclass(frozen=True, slots=True, kw_only=True)
class BacktestConfig:
    cash: float = 100_000.0
    size_pct: float = 1.0
    fractional: bool = False
    allow_short: bool = True
    commission_rate: float = 0.0
    commission_per_share: float = 0.0
    commission_per_order: float = 0.0
    commission_min: float = 0.0
    commission_max: float | None = None
    slippage_bps: float = 1.0
    price_impact: float = 0.0
    """Volume-share slippage: price_impact * (fill / bar volume) ** 2, e.g. 0.1 (0: off)."""
    max_participation: float | None = None
    """Most of a bar's volume one order takes, e.g. 0.025; the rest fills on later bars."""
    stop_loss: float | None = None
    """Exit a position this fraction below (long) or above (short) its entry, e.g. 0.02."""
    take_profit: float | None = None
    trailing_stop: float | None = None
    stop_loss_atr: float | None = None
    """The same exits as multiples of the ATR at the entry's signal bar, e.g. 2.0."""
    take_profit_atr: float | None = None
    trailing_stop_atr: float | None = None
    atr_window: int = 14
    fill_policy: str = "pessimistic"
    """When one bar reaches both the stop and the target: pessimistic (stop) or optimistic."""
    margin: float = 1.0
    """Buying power as a multiple of equity: 1 = cash account, 2 = Reg T margin."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskConfig:
    """The account's limits (see :class:`barlab.engine.risk.RiskRules`); unset = off."""

    max_position_size: float | None = None
    max_position_size_per_symbol: dict[str, float] = field(default_factory=dict)
    max_portfolio_value: float | None = None
    max_open_positions: int | None = None
    daily_loss_limit: float | None = None
    daily_loss_flatten: bool = False
    """Also close every position at the next open when the daily loss limit is hit."""
    max_drawdown: float | None = None

    def __post_init__(self) -> None:
        from barlab.engine.risk import RiskRules
        from barlab.errors import RiskError

        try:
            RiskRules(**dataclasses.asdict(self))
        except RiskError as e:
            raise ConfigError(str(e)) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class PolygonConfig:
    base_url: str = "https://api.polygon.io"
    """Overridden by $POLYGON_BASE_URL (e.g. a local emulator)."""
    requests_per_minute: float = 5.0
    """The free plan's limit; raise it for a paid plan (or $POLYGON_REQUESTS_PER_MINUTE)."""
    adjusted: bool = True
    """Split-adjusted prices."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AlpacaConfig:
    data_base_url: str = "https://data.alpaca.markets"
    """Overridden by $APCA_DATA_BASE_URL."""
    requests_per_minute: float = 200.0
    feed: str = "iex"
    """iex (free plans) or sip."""
    adjustment: str = "split"
    """raw, split, dividend or all."""

    def __post_init__(self) -> None:
        if self.feed not in ("iex", "sip"):
            raise ConfigError(f"alpaca.feed must be iex or sip, got {self.feed!r}")
        if self.adjustment not in ("raw", "split", "dividend", "all"):
            raise ConfigError(
                f"alpaca.adjustment must be raw, split, dividend or all, got {self.adjustment!r}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class FinnhubConfig:
    base_url: str = "https://finnhub.io/api/v1"
    """Overridden by $FINNHUB_BASE_URL."""
    requests_per_minute: float = 60.0
    requests_per_second: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveConfig:
    """Paper (or live) trading: where the broker and the market-data stream are."""

    trading_base_url: str = "https://paper-api.alpaca.markets"
    """Alpaca's trading REST host; overridden by $APCA_API_BASE_URL (e.g. the local emulator of
    ``backtest paper-sim``, http://127.0.0.1:8765). The live host needs an explicit opt-in."""
    data_stream_url: str = "wss://stream.data.alpaca.markets"
    """The market-data WebSocket host; the feed is appended (``/v2/iex``)."""
    feed: str = "iex"
    """iex (free plans), sip (paid), delayed_sip or test (FAKEPACA, around the clock)."""
    market_data_retention: int = 1000
    """Trades kept per symbol in the bridge's in-memory market data store (with the latest
    quote and bar), for strategies that stream trades or quotes (``Strategy.market_data``)."""
    on_shutdown: str = "cancel"
    """What stopping the bridge does to open orders: cancel them, or keep them working."""

    def __post_init__(self) -> None:
        if not self.trading_base_url.startswith(("https://", "http://")):
            raise ConfigError(
                f"live.trading_base_url must be an http(s) URL, got {self.trading_base_url!r}; "
                "e.g. https://paper-api.alpaca.markets"
            )
        if not self.data_stream_url.startswith(("wss://", "ws://")):
            raise ConfigError(
                f"live.data_stream_url must be a ws(s) URL, got {self.data_stream_url!r}; "
                "e.g. wss://stream.data.alpaca.markets"
            )
        if self.feed not in ("iex", "sip", "delayed_sip", "test"):
            raise ConfigError(f"live.feed must be iex, sip, delayed_sip or test, got {self.feed!r}")
        if self.on_shutdown not in ("cancel", "keep"):
            raise ConfigError(f"live.on_shutdown must be cancel or keep, got {self.on_shutdown!r}")
        n = self.market_data_retention
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(
                "live.market_data_retention is the number of trades kept per symbol, a whole "
                f"number >= 1, e.g. 1000; got {n!r}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class PromotionConfig:
    """The gates ``backtest promote`` checks before a strategy may trade on paper."""

    min_trades: int = 30
    """Fewest closed trades in the backtest, e.g. 30 (fewer say little about the edge)."""
    min_sharpe: float = 1.0
    """Lowest annualised Sharpe ratio of the backtest, e.g. 1.0."""
    max_drawdown: float = 0.25
    """Deepest peak-to-trough fall of equity allowed, a fraction: 0.25 = 25 %."""
    require_walkforward: bool = False
    """Fail when no walk-forward run of the strategy exists (one that exists is always checked)."""
    min_oos_sharpe: float = 0.0
    """Lowest out-of-sample Sharpe ratio of the walk-forward, e.g. 0.5."""
    require_parity: bool = True
    """Fail when no replay parity result exists (``backtest live --replay``); false: optional."""
    allow_synthetic: bool = True
    """Promote runs on the SYNTHETIC demo market (labelled so in the record); false refuses."""

    def __post_init__(self) -> None:
        if self.min_trades < 0:
            raise ConfigError(f"promotion.min_trades must be >= 0, got {self.min_trades}")
        if not 0 < self.max_drawdown <= 1:
            raise ConfigError(
                f"promotion.max_drawdown is a fraction in (0, 1], e.g. 0.25 for 25 %; "
                f"got {self.max_drawdown!r}"
            )
        for name in ("min_sharpe", "min_oos_sharpe"):
            value = getattr(self, name)
            if value != value or value in (float("inf"), float("-inf")):
                raise ConfigError(f"promotion.{name} must be a finite number, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemConfig:
    log_level: str = "WARNING"
    reports_dir: str = "reports"
    numba_cache_dir: str = ""
    """Where compiled kernels are cached ($NUMBA_CACHE_DIR wins); empty: numba's default,
    beside the installed sources or, if that is read-only, a per-user cache directory."""

    def __post_init__(self) -> None:
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(
                f"system.log_level must be DEBUG, INFO, WARNING or ERROR, got {self.log_level!r}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The resolved configuration (no secrets in it)."""

    data: DataConfig = field(default_factory=DataConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    polygon: PolygonConfig = field(default_factory=PolygonConfig)
    alpaca: AlpacaConfig = field(default_factory=AlpacaConfig)
    finnhub: FinnhubConfig = field(default_factory=FinnhubConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    promotion: PromotionConfig = field(default_factory=PromotionConfig)
    system: SystemConfig = field(default_factory=SystemConfig)
    path: str | None = None
    """The file it was read from, if any."""

    @property
    def data_dir(self) -> Path:
        return Path(self.data.dir).expanduser()

    @property
    def reports_dir(self) -> Path:
        return Path(self.system.reports_dir).expanduser()

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("path")
        return out


_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "strategy": StrategyConfig,
    "backtest": BacktestConfig,
    "risk": RiskConfig,
    "polygon": PolygonConfig,
    "alpaca": AlpacaConfig,
    "finnhub": FinnhubConfig,
    "live": LiveConfig,
    "promotion": PromotionConfig,
    "system": SystemConfig,
}
# Environment variables that set a key without the BARLAB_ prefix (the vendors' own names).
_ALIASES = {
    "BARLAB_REPORTS_DIR": ("system", "reports_dir"),
    "POLYGON_BASE_URL": ("polygon", "base_url"),
    "POLYGON_REQUESTS_PER_MINUTE": ("polygon", "requests_per_minute"),
    "APCA_DATA_BASE_URL": ("alpaca", "data_base_url"),
    "FINNHUB_BASE_URL": ("finnhub", "base_url"),
    "APCA_API_BASE_URL": ("live", "trading_base_url"),
}
_NOT_KEYS = {"BARLAB_CONFIG"}


def config_path(cwd: Path | None = None) -> Path | None:
    """The config file in effect, or None."""
    if env := os.environ.get("BARLAB_CONFIG"):
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError(f"BARLAB_CONFIG points to {path}, which does not exist")
        return path
    local = (cwd or Path.cwd()) / "backtest.toml"
    if local.is_file():
        return local
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    user = base / "barlab" / "backtest.toml"
    return user if user.is_file() else None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the config file (if any), apply ``BARLAB_*`` overrides, validate everything."""
    file = Path(path) if path is not None else config_path()
    raw: dict[str, Any] = {}
    if file is not None:
        try:
            raw = tomllib.loads(file.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{file} is not valid TOML: {e}") from e
        except OSError as e:
            raise ConfigError(f"cannot read config file {file}: {e.strerror}") from e
    where = str(file) if file else "defaults"
    sections: dict[str, dict[str, Any]] = {}
    for name, values in raw.items():
        if name not in _SECTIONS:
            raise ConfigError(f"{where}: unknown section [{name}]; known: {', '.join(_SECTIONS)}")
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: {name} must be a [section]")
        sections[name] = dict(values)
    for var, value in os.environ.items():
        if var in _NOT_KEYS or not (var.startswith("BARLAB_") or var in _ALIASES):
            continue
        section, key = _ALIASES.get(var) or _split_env(var)
        sections.setdefault(section, {})[key] = _EnvValue(var, value)
    built = {
        name: _build(cls, name, sections.get(name, {}), where) for name, cls in _SECTIONS.items()
    }
    try:
        return Config(**built, path=str(file) if file else None)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


@dataclass(frozen=True, slots=True)
class _EnvValue:
    var: str
    text: str


def _split_env(var: str) -> tuple[str, str]:
    rest = var.removeprefix("BARLAB_").lower()
    for section in _SECTIONS:
        if rest.startswith(section + "_"):
            return section, rest.removeprefix(section + "_")
    raise ConfigError(
        f"environment variable {var} is not a barlab setting; use BARLAB_<SECTION>_<KEY> "
        f"with a section of {', '.join(_SECTIONS)} (e.g. BARLAB_RISK_DAILY_LOSS_LIMIT)"
    )


def _build(cls: type, section: str, values: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        origin = value.var if isinstance(value, _EnvValue) else f"{where}: [{section}] {key}"
        if key not in names:
            raise ConfigError(
                f"{origin}: unknown key {key!r} in [{section}]; known: {', '.join(names)}"
            )
        kwargs[key] = _convert(value, hints[key], origin)
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def _convert(value: Any, hint: Any, origin: str) -> Any:
    """Check (TOML) or parse (environment) ``value`` against the field type ``hint``."""
    from_env = isinstance(value, _EnvValue)
    text = value.text.strip() if from_env else None
    optional = type(None) in typing.get_args(hint)
    base = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
    if optional and (value is None or text in ("", "none", "None")):
        return None
    if typing.get_origin(base) is dict:
        return _convert_mapping(value, text, origin)
    if typing.get_origin(base) is list:
        if from_env:
            return [s.strip() for s in (text or "").split(",") if s.strip()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        raise ConfigError(f"{origin} must be a list of strings, got {value!r}")
    if base is bool:
        if from_env and text and text.lower() in ("1", "true", "yes", "0", "false", "no"):
            return text.lower() in ("1", "true", "yes")
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{origin} must be true or false, got {_show(value)}")
    if base is int:
        try:
            if from_env:
                return int(text or "")
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        except ValueError:
            pass
        raise ConfigError(f"{origin} must be a whole number, got {_show(value)}")
    if base is float:
        try:
            if from_env:
                return float(text or "")
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
        except ValueError:
            pass
        raise ConfigError(f"{origin} must be a number, got {_show(value)}")
    if base is str:
        if from_env:
            return text
        if isinstance(value, str):
            return value
        raise ConfigError(f"{origin} must be a string, got {_show(value)}")
    raise AssertionError(f"unhandled config type {hint}")


def _convert_mapping(value: Any, text: str | None, origin: str) -> dict[str, float]:
    """A table of symbol -> dollars: TOML ``{ TSLA = 10000 }`` or env ``TSLA=10000,AAPL=5000``."""
    if text is not None:
        pairs = [item.partition("=") for item in text.split(",") if item.strip()]
        items = {k.strip().upper(): v.strip() for k, _, v in pairs}
    elif isinstance(value, dict):
        items = dict(value)
    else:
        raise ConfigError(f"{origin} must be a table of SYMBOL = dollars, got {value!r}")
    out = {}
    for key, raw in items.items():
        try:
            if isinstance(raw, bool):
                raise ValueError
            out[str(key)] = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{origin}.{key} must be a number of dollars, got {raw!r}") from None
    return out


def _show(value: Any) -> str:
    return repr(value.text) if isinstance(value, _EnvValue) else repr(value)


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments, blank lines, ``export`` and quotes allowed)."""
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        out[key.strip()] = value.strip().strip("'\"")
    return out


def secrets(cwd: Path | None = None) -> dict[str, str]:
    """The API keys that are set, from the environment first, then ./.env."""
    dotenv = read_dotenv((cwd or Path.cwd()) / ".env")
    found = {}
    for name in SECRET_NAMES:
        value = os.environ.get(name) or dotenv.get(name)
        if value:
            found[name] = value
    return found


def mask(secret: str) -> str:
    """``'****'`` plus at most the last 4 characters (none for short keys)."""
    return "****" + (secret[-4:] if len(secret) >= 16 else "")


def show(config: Config) -> str:
    """The resolved configuration as TOML, with API keys masked."""
    lines = [f"# config file: {config.path or 'none (defaults)'}"]
    for section, values in config.to_dict().items():
        lines.append(f"\n[{section}]")
        for key, value in values.items():
            if value is None:
                lines.append(f"# {key} = (off)")
            else:
                lines.append(f"{key} = {_toml(value)}")
    found = secrets()
    lines.append("\n# API keys (environment or .env only)")
    for name in SECRET_NAMES:
        lines.append(f"# {name} = {mask(found[name]) if name in found else '(not set)'}")
    return "\n".join(lines)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + " }"
    return repr(value)
