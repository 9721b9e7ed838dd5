"""Configuration: a TOML file, overridden by TREASURY_* variables, overridden by command-line options.

Defaults are the real System R set-up (INTERFACE.md): mainnet, the treasury wallet, the mint table of
DESIGN.md §1 and a SQLite ledger at ./treasury.db. Every value is parsed and checked here, once; a bad
value raises ConfigError naming where it came from (file key, variable or option).

Errors:
    ConfigError   a value (or the file) is unusable; `source` names it
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import os
import re
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from solders.pubkey import Pubkey

from pricing.assets import DEFAULT_ASSETS, PRICE_RULES, Asset, AssetTable
from pricing.coingecko import PLANS, resolve_plan

DEFAULT_WALLET: Final = "9Nc6u9ft3uAr6DSaqHijFjQS53hZPDRL2LoVYvH4vK5H"
DEFAULT_RPC_URL: Final = "https://api.mainnet-beta.solana.com"
DEFAULT_COINGECKO_URL: Final = "https://api.coingecko.com/api/v3"
DEFAULT_STRIPE_API_BASE: Final = "https://api.stripe.com"
DEFAULT_DATABASE_URL: Final = "sqlite:///./treasury.db"
DEFAULT_MEMO_PATTERN: Final = re.compile(r"\b(?P<ref>SR-[A-Z0-9]{4,32})\b")
DEFAULT_DUST_RAW: Final[Mapping[str, int]] = {
    "SOL": 100_000,
    "USDC": 10_000,
    "USDT": 10_000,
    "PYUSD": 10_000,
    "OSR": 1_000_000_000,
}


class ConfigError(Exception):
    """A configuration value is unusable. `source` names the file key, variable or option."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


class Secret:
    """A value that must never be printed or logged (API keys). `reveal()` is the only way out."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclasses.dataclass(frozen=True, slots=True)
class OsrPricePolicy:
    """How OSR is priced: a CoinGecko coin id, or a fixed USD rate per token while it has no market."""

    kind: str  # "coingecko" or "fixed"
    coin_id: str | None = None
    fixed_usd: Decimal | None = None

    def __str__(self) -> str:
        return f"coingecko:{self.coin_id}" if self.kind == "coingecko" else f"fixed:{self.fixed_usd}"


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    rpc_url: str = DEFAULT_RPC_URL
    ws_url: str | None = None  # None: derived from rpc_url (see `websocket_url`)
    wallets: tuple[str, ...] = (DEFAULT_WALLET,)
    coingecko_url: str = DEFAULT_COINGECKO_URL
    coingecko_api_key: Secret | None = None
    coingecko_plan: str = "auto"  # auto: pro for pro-api.coingecko.com, else demo with a key, else keyless
    stripe_api_key: Secret | None = None
    stripe_api_base: str = DEFAULT_STRIPE_API_BASE
    osr_price: OsrPricePolicy = OsrPricePolicy("fixed", fixed_usd=Decimal("0.005"))
    osr_bonus: Decimal = Decimal("0.5")
    osr_burn_share: Decimal = Decimal("0.7")
    dust_raw: Mapping[str, int] = dataclasses.field(default_factory=lambda: dict(DEFAULT_DUST_RAW))
    health_addr: tuple[str, int] = ("127.0.0.1", 8787)
    price_max_age_s: int = 7200
    start: dt.datetime | None = None
    # A deposit reference in a memo: a per-customer code issued by the billing service (DESIGN.md §3).
    memo_pattern: re.Pattern[str] = DEFAULT_MEMO_PATTERN
    # The daemon (treasury run).
    poll_interval_s: int = 30  # forward polls from the cursors, besides every websocket reconnect
    finalize_interval_s: int = 2  # how often confirmed deposits are checked for finality
    drop_after_slots: int = 300  # a confirmed transaction not final this many slots later is dropped
    ws_silence_s: int = 60  # a websocket silent this long is dead (slot notifications come every ~0.4 s)
    max_lag_slots: int = 300  # /healthz fails when the poll is further behind the finalized tip
    shutdown_grace_s: int = 20  # SIGTERM: time to finish what is in flight before exiting
    assets: tuple[Asset, ...] = DEFAULT_ASSETS
    # Where OSR sent by the treasury counts as burned (the owner of the receiving token account, e.g. an
    # incinerator); None: only Token burn/burnChecked instructions count (indexer/burns.py).
    osr_burn_address: str | None = None

    @property
    def websocket_url(self) -> str:
        """TREASURY_WS_URL, else the RPC URL with http(s) replaced by ws(s)."""
        if self.ws_url is not None:
            return self.ws_url
        parts = urllib.parse.urlsplit(self.rpc_url)
        scheme = {"https": "wss", "http": "ws"}[parts.scheme]
        return urllib.parse.urlunsplit((scheme, *parts[1:]))

    @property
    def asset_table(self) -> AssetTable:
        return AssetTable(self.assets)


def redact_url(url: str) -> str:
    """A URL fit for logs and errors: any password replaced by ***."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urllib.parse.urlunsplit((parts.scheme, f"{user}:***@{host}{port}", *parts[2:]))


# --- value parsers: each takes the raw text (or TOML value) and raises ValueError with a reason ---


def _parse_http_url(value: Any) -> str:
    text = _text(value)
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {text!r}")
    return text.rstrip("/")


def _parse_ws_url(value: Any) -> str | None:
    text = _text(value)
    if not text:
        return None
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError("not a ws(s) URL")
    return text


def _parse_database_url(value: Any) -> str:
    text = _text(value)
    scheme = text.split(":", 1)[0]
    if scheme.startswith("sqlite"):
        if not text.startswith("sqlite:///") and text != "sqlite://":
            raise ValueError("a SQLite URL looks like sqlite:///path/to/file.db")
        return text
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        if not urllib.parse.urlsplit(text).path.strip("/") and "host=" not in text:
            raise ValueError("a PostgreSQL URL names a database: postgresql://user@host:port/dbname")
        return text
    # The URL may hold a password: never echo it.
    raise ValueError(f"unsupported database scheme {scheme!r} (use sqlite:/// or postgresql://)")


def parse_pubkey(text: str) -> str:
    """A base58 Solana address of 32 bytes, returned in canonical form."""
    try:
        return str(Pubkey.from_string(text.strip()))
    except ValueError:
        raise ValueError(f"not a Solana address: {text.strip()!r}") from None


def _parse_optional_pubkey(value: Any) -> str | None:
    text = _text(value)
    return parse_pubkey(text) if text else None


def _parse_wallets(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else _text(value).split(",")
    wallets = tuple(parse_pubkey(str(item)) for item in items if str(item).strip())
    if not wallets:
        raise ValueError("at least one treasury wallet is needed")
    if len(set(wallets)) != len(wallets):
        raise ValueError("a wallet is listed twice")
    return wallets


def _parse_secret(value: Any) -> Secret | None:
    text = _text(value)
    return Secret(text) if text else None


def _parse_coingecko_plan(value: Any) -> str:
    text = _text(value).lower()
    if text not in PLANS:
        raise ValueError(f"expected one of {', '.join(sorted(PLANS))}, got {text!r}")
    return text


def _parse_decimal(value: Any, *, low: Decimal, high: Decimal | None = None) -> Decimal:
    text = _text(value)
    try:
        number = Decimal(text)
    except decimal.InvalidOperation:
        raise ValueError(f"not a decimal number: {text!r}") from None
    if not number.is_finite() or number < low or (high is not None and number > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"must be {bounds}, got {text}")
    return number


def _parse_osr_price(value: Any) -> OsrPricePolicy:
    text = _text(value)
    kind, _, argument = text.partition(":")
    if kind == "coingecko" and re.fullmatch(r"[a-z0-9][a-z0-9-]*", argument):
        return OsrPricePolicy("coingecko", coin_id=argument)
    if kind == "fixed":
        rate = _parse_decimal(argument, low=Decimal(0))
        if rate == 0:
            raise ValueError("a fixed OSR rate must be positive")
        return OsrPricePolicy("fixed", fixed_usd=rate)
    raise ValueError(f"expected coingecko:<coin id> or fixed:<USD per OSR>, got {text!r}")


def _parse_dust(value: Any) -> Mapping[str, int]:
    """The thresholds named in the value; assets not named keep their defaults (see load_settings)."""
    thresholds: dict[str, int] = {}
    if isinstance(value, Mapping):
        items = [(str(k), str(v)) for k, v in value.items()]
    else:
        items = []
        for part in _text(value).split(","):
            if not part.strip():
                continue
            symbol, sep, amount = part.partition("=")
            if not sep:
                raise ValueError(f"expected ASSET=N, got {part.strip()!r}")
            items.append((symbol, amount))
    for raw_symbol, raw_amount in items:
        symbol = raw_symbol.strip().upper()
        amount = raw_amount.strip()
        if not re.fullmatch(r"[A-Z0-9]{1,16}", symbol):
            raise ValueError(f"bad asset symbol {symbol!r}")
        if not (amount.isascii() and amount.isdigit()):
            raise ValueError(f"{symbol}: threshold must be a whole number of base units, got {amount!r}")
        thresholds[symbol] = int(amount)
    return thresholds


def _parse_host_port(value: Any) -> tuple[str, int]:
    text = _text(value)
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _parse_positive_int(value: Any) -> int:
    text = _text(value)
    if not (text.isascii() and text.isdigit()) or int(text) <= 0:
        raise ValueError(f"expected a positive whole number, got {text!r}")
    return int(text)


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 time (or date) as an aware UTC datetime; a time without offset is taken as UTC."""
    text = text.strip()
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _parse_start(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    text = _text(value)
    return parse_time(text) if text else None


def _parse_pattern(value: Any) -> re.Pattern[str]:
    text = _text(value)
    if not text:
        raise ValueError("the memo pattern is empty")
    try:
        pattern = re.compile(text)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
    if pattern.groups > 1 and "ref" not in pattern.groupindex:
        raise ValueError("a pattern with several groups names the reference with (?P<ref>…)")
    return pattern


def _parse_assets(value: Any) -> tuple[Asset, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError("expected a non-empty array of tables [[assets]]")
    assets = []
    for entry in value:
        if not isinstance(entry, Mapping):
            raise ValueError("each [[assets]] entry is a table")
        unknown = set(entry) - {"symbol", "mint", "decimals", "token_program", "price_rule"}
        if unknown:
            raise ValueError(f"unknown keys in [[assets]]: {', '.join(sorted(unknown))}")
        symbol = str(entry.get("symbol", "")).upper()
        mint = entry.get("mint")
        token_program = entry.get("token_program")
        decimals = entry.get("decimals")
        rule = entry.get("price_rule")
        if not re.fullmatch(r"[A-Z0-9]{1,16}", symbol):
            raise ValueError(f"bad asset symbol {symbol!r}")
        if not isinstance(decimals, int) or not 0 <= decimals <= 18:
            raise ValueError(f"{symbol}: decimals must be a whole number 0..18")
        if rule not in PRICE_RULES:
            raise ValueError(f"{symbol}: price_rule must be one of {', '.join(sorted(PRICE_RULES))}")
        if symbol == "SOL":
            if mint is not None or token_program is not None:
                raise ValueError("SOL is native: it has no mint or token program")
        else:
            if not isinstance(mint, str) or not isinstance(token_program, str):
                raise ValueError(f"{symbol}: mint and token_program are required")
            mint = parse_pubkey(mint)
            token_program = parse_pubkey(token_program)
        assets.append(Asset(symbol, mint, decimals, token_program, rule))
    try:
        AssetTable(tuple(assets))
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    return tuple(assets)


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError(f"expected text, got {type(value).__name__}")
    return str(value).strip()


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    name: str  # Settings attribute and TOML key
    parse: Callable[[Any], Any]
    option: bool = True  # settable by a command-line option (never for secrets: process lists leak)
    help: str = ""

    @property
    def env(self) -> str:
        return "TREASURY_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


FIELDS: Final[tuple[_Field, ...]] = (
    _Field("database_url", _parse_database_url, help="ledger URL (sqlite:///… or postgresql://…)"),
    _Field("rpc_url", _parse_http_url, help="Solana JSON-RPC over HTTP"),
    _Field("ws_url", _parse_ws_url, help="Solana websocket (default: derived from the RPC URL)"),
    _Field("wallets", _parse_wallets, help="comma-separated treasury wallets"),
    _Field("coingecko_url", _parse_http_url, help="CoinGecko API base (…/api/v3)"),
    _Field("coingecko_api_key", _parse_secret, option=False),
    _Field(
        "coingecko_plan",
        _parse_coingecko_plan,
        help="auto (pro-api.coingecko.com means pro, else demo with a key, else keyless), keyless, demo or pro",
    ),
    _Field("stripe_api_key", _parse_secret, option=False),
    _Field("stripe_api_base", _parse_http_url, help="Stripe API base address"),
    _Field("osr_price", _parse_osr_price, help="coingecko:<coin id> or fixed:<USD per OSR>"),
    _Field("osr_bonus", lambda v: _parse_decimal(v, low=Decimal(0)), help="bonus share on OSR deposits"),
    _Field(
        "osr_burn_share",
        lambda v: _parse_decimal(v, low=Decimal(0), high=Decimal(1)),
        help="share of OSR received that is to be burned",
    ),
    _Field("dust", _parse_dust, help="per-asset dust thresholds in base units, ASSET=N,…"),
    _Field("health_addr", _parse_host_port, help="HOST:PORT of /healthz and /metrics"),
    _Field("price_max_age_s", _parse_positive_int, help="oldest acceptable price point, seconds"),
    _Field("start", _parse_start, help="ISO 8601 time where a scan with no cursor begins"),
    _Field("memo_pattern", _parse_pattern, help="regex finding deposit references in memos"),
    _Field("poll_interval_s", _parse_positive_int, help="daemon: seconds between forward polls"),
    _Field("finalize_interval_s", _parse_positive_int, help="daemon: seconds between finality checks"),
    _Field("drop_after_slots", _parse_positive_int, help="daemon: slots after which an unfinalized deposit is dropped"),
    _Field("ws_silence_s", _parse_positive_int, help="daemon: seconds of websocket silence that mean a dead socket"),
    _Field("max_lag_slots", _parse_positive_int, help="daemon: /healthz fails beyond this lag behind the tip"),
    _Field("shutdown_grace_s", _parse_positive_int, help="daemon: seconds to finish in-flight work on SIGTERM"),
    _Field("assets", _parse_assets, option=False),
    _Field(
        "osr_burn_address",
        _parse_optional_pubkey,
        help="address whose receipt of treasury OSR counts as a burn (the receiving account's owner)",
    ),
)
_ATTRIBUTE: Final = {"dust": "dust_raw"}


def load_settings(
    *,
    config_path: str | None = None,
    environ: Mapping[str, str] | None = None,
    options: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from the file (`config_path`, else TREASURY_CONFIG), variables and options, in that order."""
    environ = os.environ if environ is None else environ
    options = options or {}
    values: dict[str, Any] = {}

    dust_source = "TREASURY_DUST"
    path = config_path or environ.get("TREASURY_CONFIG") or None
    if path:
        file_values = _read_toml(Path(path))
        known = {field.name for field in FIELDS}
        for key in file_values:
            if key not in known:
                raise ConfigError(f"{path}: {key}", "unknown setting")
        for field in FIELDS:
            if field.name in file_values:
                values[field.name] = _apply(field, file_values[field.name], f"{path}: {field.name}")
                dust_source = f"{path}: dust" if field.name == "dust" else dust_source
    for field in FIELDS:
        if field.env in environ:
            values[field.name] = _apply(field, environ[field.env], field.env)
            dust_source = field.env if field.name == "dust" else dust_source
    for field in FIELDS:
        if field.option and options.get(field.name) is not None:
            values[field.name] = _apply(field, options[field.name], field.flag)
            dust_source = field.flag if field.name == "dust" else dust_source

    symbols = {asset.symbol for asset in values.get("assets", DEFAULT_ASSETS)}
    if "SOL" not in symbols:
        raise ConfigError("assets", "the asset table must contain SOL")
    named_dust = values.get("dust", {})
    unknown_dust = set(named_dust) - symbols
    if unknown_dust:
        raise ConfigError(dust_source, f"unknown asset {sorted(unknown_dust)[0]}")
    values["dust"] = {
        **{symbol: raw for symbol, raw in DEFAULT_DUST_RAW.items() if symbol in symbols},
        **named_dust,
    }
    api_key: Secret | None = values.get("coingecko_api_key")
    try:
        resolve_plan(
            values.get("coingecko_url", DEFAULT_COINGECKO_URL),
            api_key.reveal() if api_key is not None else None,
            values.get("coingecko_plan", "auto"),
        )
    except ValueError as exc:
        raise ConfigError("TREASURY_COINGECKO_PLAN", str(exc)) from None
    return Settings(**{_ATTRIBUTE.get(name, name): value for name, value in values.items()})


def _apply(field: _Field, raw: Any, source: str) -> Any:
    try:
        return field.parse(raw)
    except ValueError as exc:
        raise ConfigError(source, str(exc)) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(str(path), "configuration file not found") from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read configuration file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None
