"""The price service: a Quote for an asset at a block time, by the rules of DESIGN.md §4, with a cache.

- "stable" assets: 1 USD per token, no network.
- "market" assets (SOL, coin id "solana"): the latest CoinGecko point at or before the block time, no
  older than `max_age_s`. A live deposit (`live=True`) may use `/simple/price` when its
  `last_updated_at` lies in [block time − max_age_s, block time + 60 s]; otherwise, or when that call
  fails, the range rule applies.
- "osr" assets: by policy, `fixed` (a USD rate per token, no network) or `coingecko` (a coin id, priced
  like SOL).
When no acceptable price exists the oracle raises PriceUnavailable: never a price of 0, never a stale one.

Cache: market_chart/range replies are kept per coin with the time intervals they cover. A quote
is answered from the cache when [block time − max_age_s, block time] is covered; otherwise the oracle
fetches the missing part of the aligned cell (CELL_S, 30 days) around the block time, so deposits near
each other share one call (hourly points), or, for a deposit whose window lies within the last day,
the missing part of that day (which CoinGecko serves 5-minutely). `prefetch(asset, start, end)`
fetches a whole backfill window ahead, in chunks of at most 90 days (CoinGecko turns longer ranges into
daily points). Each point keeps the granularity
and fetch time of the reply it came from; those go into the quote's evidence.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Final

import structlog

from pricing.assets import Asset
from pricing.coingecko import PLAN_AUTO, CoinGeckoClient, SimplePrice
from pricing.errors import COINGECKO_ERROR, FUTURE, NO_SOURCE, CoinGeckoError, PriceUnavailable, RateLimited
from pricing.quote import (
    RULE_FIXED,
    RULE_STABLE,
    SOURCE_FIXED,
    SOURCE_RANGE,
    SOURCE_SIMPLE,
    SOURCE_STABLE,
    Quote,
    iso,
    rule_at_or_before,
    rule_live,
    utc,
)
from pricing.rules import (
    DAY_S,
    LIVE_AHEAD_S,
    MAX_RANGE_S,
    Point,
    Rejection,
    auto_granularity,
    cell_window,
    choose_point,
    live_point_acceptable,
    merge_interval,
    missing_ranges,
    split_range,
)

DEFAULT_COINGECKO_URL: Final = "https://api.coingecko.com/api/v3"
DEFAULT_MARKET_COIN_IDS: Final[Mapping[str, str]] = MappingProxyType({"SOL": "solana"})
CELL_S: Final = 30 * DAY_S
MAX_CHUNKS_PER_FILL: Final = 200  # 200 × 90 days ≈ 49 years: a bound, never reached by real backfills
_GRANULARITY_ORDER: Final = {"5m": 0, "hourly": 1, "daily": 2}

log = structlog.get_logger("pricing.oracle")

OSR_FIXED: Final = "fixed"
OSR_COINGECKO: Final = "coingecko"


@dataclasses.dataclass(frozen=True, slots=True)
class _Fetch:
    granularity: str
    fetched_at: dt.datetime


@dataclasses.dataclass(slots=True)
class _CoinCache:
    covered: list[tuple[int, int]] = dataclasses.field(default_factory=list)  # ms, closed, merged
    points: dict[int, tuple[Decimal | None, int]] = dataclasses.field(default_factory=dict)  # ms -> price, fetch
    fetches: list[_Fetch] = dataclasses.field(default_factory=list)
    times_ms: list[int] = dataclasses.field(default_factory=list)  # sorted keys of points
    prices: list[Decimal | None] = dataclasses.field(default_factory=list)  # parallel to times_ms
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)


def _seconds(moment: dt.datetime) -> int:
    """Whole UNIX seconds, rounded down."""
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return delta.days * DAY_S + delta.seconds


def _millis(moment: dt.datetime) -> int:
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * DAY_S + delta.seconds) * 1000 + delta.microseconds // 1000


def _from_millis(time_ms: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=time_ms)


class PriceOracle:
    """Quotes for deposits. Constructed from plain values (the CLI maps Settings to them).

    Use as `async with PriceOracle(...) as oracle:` or call `aclose()`.
    """

    def __init__(
        self,
        *,
        coingecko_url: str = DEFAULT_COINGECKO_URL,
        api_key: str | None = None,
        plan: str = PLAN_AUTO,
        max_age_s: int = 7200,
        osr_policy: str = OSR_FIXED,
        osr_coin_id: str | None = None,
        osr_fixed_usd: Decimal | None = Decimal("0.005"),
        market_coin_ids: Mapping[str, str] = DEFAULT_MARKET_COIN_IDS,
        timeout_s: float = 10.0,
        max_attempts: int = 4,
        max_retry_after_s: float = 30.0,
        simple_price_ttl_s: float = 30.0,
        cell_s: int = CELL_S,
        max_cached_points: int = 1_000_000,
        client: CoinGeckoClient | None = None,
    ) -> None:
        if max_age_s <= 0:
            raise ValueError("max_age_s must be positive")
        if not 0 < cell_s <= MAX_RANGE_S:
            raise ValueError(f"cell_s must be between 1 and {MAX_RANGE_S}")
        if osr_policy == OSR_FIXED:
            if osr_fixed_usd is None or not osr_fixed_usd.is_finite() or osr_fixed_usd <= 0:
                raise ValueError("a fixed OSR policy needs a positive USD rate")
        elif osr_policy == OSR_COINGECKO:
            if not osr_coin_id:
                raise ValueError("a coingecko OSR policy needs a coin id")
        else:
            raise ValueError(f"unknown OSR price policy {osr_policy!r} (fixed or coingecko)")
        self.max_age_s = max_age_s
        self._osr_policy = osr_policy
        self._osr_coin_id = osr_coin_id
        self._osr_fixed_usd = osr_fixed_usd
        self._market_coin_ids = dict(market_coin_ids)
        self._simple_price_ttl_s = simple_price_ttl_s
        self._cell_s = cell_s
        self._max_cached_points = max_cached_points
        self._client = client or CoinGeckoClient(
            coingecko_url,
            api_key=api_key,
            plan=plan,
            timeout_s=timeout_s,
            max_attempts=max_attempts,
            max_retry_after_s=max_retry_after_s,
        )
        self._caches: dict[str, _CoinCache] = {}
        self._simple: dict[str, tuple[SimplePrice, dt.datetime]] = {}
        self.range_calls = 0  # market_chart/range requests made (each chunk counts once)

    async def __aenter__(self) -> PriceOracle:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    @property
    def plan(self) -> str:
        return self._client.plan

    def coin_id_for(self, asset: Asset) -> str | None:
        """The CoinGecko coin id that prices `asset`, or None when no network is involved."""
        if asset.price_rule == "market":
            return self._market_coin_ids.get(asset.symbol)
        if asset.price_rule == "osr" and self._osr_policy == OSR_COINGECKO:
            return self._osr_coin_id
        return None

    async def quote(self, asset: Asset, at: dt.datetime, *, now: dt.datetime, live: bool = False) -> Quote:
        """The quote for a deposit of `asset` at block time `at`; `now` is the current time.

        Raises PriceUnavailable (reason in pricing.errors.REASONS) when there is no acceptable price.
        """
        at, now = utc(at, "at"), utc(now, "now")
        if at > now + dt.timedelta(seconds=LIVE_AHEAD_S):
            raise PriceUnavailable(FUTURE, f"{iso(at)} lies after now ({iso(now)})")
        if asset.price_rule == "stable":
            return Quote(asset.symbol, Decimal(1), SOURCE_STABLE, None, at, None, now, RULE_STABLE)
        if asset.price_rule == "osr" and self._osr_policy == OSR_FIXED:
            assert self._osr_fixed_usd is not None  # checked in __init__
            return Quote(asset.symbol, self._osr_fixed_usd, SOURCE_FIXED, None, at, None, now, RULE_FIXED)
        coin_id = self.coin_id_for(asset)
        if coin_id is None:
            raise PriceUnavailable(NO_SOURCE, f"no price source for {asset.symbol} (rule {asset.price_rule})")
        if live:
            quote = await self._live_quote(asset.symbol, coin_id, at, now)
            if quote is not None:
                return quote
        return await self._range_quote(asset.symbol, coin_id, at, now)

    async def prefetch(
        self, asset: Asset, start: dt.datetime, end: dt.datetime, *, now: dt.datetime | None = None
    ) -> int:
        """Warm the cache for deposits of `asset` between `start` and `end` (a backfill): fetch what is not
        cached yet, in chunks of at most 90 days. Returns the number of range calls made (0 when the
        asset needs no network). Raises CoinGeckoError when CoinGecko fails."""
        coin_id = self.coin_id_for(asset)
        if coin_id is None:
            return 0
        start, end = utc(start, "start"), utc(end, "end")
        now = utc(now, "now") if now is not None else dt.datetime.now(dt.UTC)
        return await self._fill(coin_id, _millis(start) - self.max_age_s * 1000, min(_millis(end), _millis(now)), now)

    # --- rules ---

    async def _live_quote(self, symbol: str, coin_id: str, at: dt.datetime, now: dt.datetime) -> Quote | None:
        cached = self._simple.get(coin_id)
        try:
            if cached is not None and 0 <= (now - cached[1]).total_seconds() <= self._simple_price_ttl_s:
                simple, fetched_at = cached
            else:
                simple, fetched_at = await self._client.simple_price(coin_id), now
                self._simple[coin_id] = (simple, fetched_at)
        except CoinGeckoError as exc:
            log.warning("price.live_failed", coin_id=coin_id, error=type(exc).__name__, detail=str(exc))
            return None
        if not live_point_acceptable(_millis(simple.last_updated_at), _millis(at), self.max_age_s):
            log.info(
                "price.live_outside_window",
                coin_id=coin_id,
                block_time=iso(at),
                last_updated_at=iso(simple.last_updated_at),
            )
            return None
        return Quote(
            asset=symbol,
            price_usd=simple.price_usd,
            source=SOURCE_SIMPLE,
            coin_id=coin_id,
            point_time=simple.last_updated_at,
            granularity=None,
            fetched_at=fetched_at,
            rule=rule_live(self.max_age_s, LIVE_AHEAD_S),
        )

    async def _range_quote(self, symbol: str, coin_id: str, at: dt.datetime, now: dt.datetime) -> Quote:
        at_ms, now_ms = _millis(at), _millis(now)
        cache = self._cache(coin_id)
        # Points after `now` cannot exist yet, so coverage up to min(at, now) decides.
        if missing_ranges(cache.covered, at_ms - self.max_age_s * 1000, min(at_ms, now_ms)):
            if at_ms - self.max_age_s * 1000 >= now_ms - DAY_S * 1000:
                # A recent deposit: the last day, which CoinGecko serves 5-minutely.
                from_ms, to_ms = now_ms - DAY_S * 1000, now_ms
            else:
                cell_start_s, cell_end_s = cell_window(_seconds(at), self._cell_s)
                from_ms, to_ms = (cell_start_s - self.max_age_s) * 1000, min((cell_end_s + 1) * 1000, now_ms)
            try:
                await self._fill(coin_id, from_ms, to_ms, now)
            except CoinGeckoError as exc:
                retry_after_s = exc.retry_after_s if isinstance(exc, RateLimited) else None
                raise PriceUnavailable(
                    COINGECKO_ERROR, f"{symbol} at {iso(at)}: {exc}", retry_after_s=retry_after_s
                ) from exc
        choice = choose_point(cache.times_ms, cache.prices, at_ms, self.max_age_s)
        if isinstance(choice, Rejection):
            raise PriceUnavailable(choice.reason, f"{symbol} ({coin_id}) at {iso(at)}: {choice.detail}")
        time_ms = cache.times_ms[choice]
        price, fetch_index = cache.points[time_ms]
        assert price is not None  # choose_point accepts only valid prices
        fetch = cache.fetches[fetch_index]
        return Quote(
            asset=symbol,
            price_usd=price,
            source=SOURCE_RANGE,
            coin_id=coin_id,
            point_time=_from_millis(time_ms),
            granularity=fetch.granularity,
            fetched_at=fetch.fetched_at,
            rule=rule_at_or_before(self.max_age_s),
        )

    # --- the range cache ---

    def _cache(self, coin_id: str) -> _CoinCache:
        cache = self._caches.get(coin_id)
        if cache is None:
            cache = self._caches[coin_id] = _CoinCache()
        return cache

    async def _fill(self, coin_id: str, from_ms: int, to_ms: int, now: dt.datetime) -> int:
        """Fetch the parts of [from_ms, to_ms] not yet covered, in chunks of at most MAX_RANGE_S."""
        cache = self._cache(coin_id)
        calls = 0
        async with cache.lock:  # concurrent quotes of one coin wait for one fetch instead of repeating it
            chunks = [
                chunk
                for gap_from_ms, gap_to_ms in missing_ranges(cache.covered, from_ms, to_ms)
                # CoinGecko takes whole seconds: widen the gap outwards to them.
                for chunk in split_range(gap_from_ms // 1000, -(-gap_to_ms // 1000))
            ]
            if len(chunks) > MAX_CHUNKS_PER_FILL:
                raise ValueError(f"{len(chunks)} range chunks to fetch: more than {MAX_CHUNKS_PER_FILL}")
            for chunk_from_s, chunk_to_s in chunks:
                points = await self._client.market_chart_range(coin_id, chunk_from_s, chunk_to_s)
                calls += 1
                self.range_calls += 1
                granularity = auto_granularity(chunk_from_s, chunk_to_s, _seconds(now))
                self._store(cache, points, (chunk_from_s * 1000, chunk_to_s * 1000), _Fetch(granularity, now))
                log.debug(
                    "price.range_fetched",
                    coin_id=coin_id,
                    from_s=chunk_from_s,
                    to_s=chunk_to_s,
                    points=len(points),
                    granularity=granularity,
                )
        return calls

    def _store(self, cache: _CoinCache, points: list[Point], interval: tuple[int, int], fetch: _Fetch) -> None:
        if len(cache.points) + len(points) > self._max_cached_points:
            # A bound on memory: start over rather than grow without limit (later quotes refetch).
            log.info("price.cache_reset", points=len(cache.points))
            cache.covered, cache.points, cache.fetches = [], {}, []
        fetch_index = len(cache.fetches)
        cache.fetches.append(fetch)
        for time_ms, price in points:
            existing = cache.points.get(time_ms)
            if existing is not None:
                old = cache.fetches[existing[1]]
                if _GRANULARITY_ORDER[old.granularity] <= _GRANULARITY_ORDER[fetch.granularity]:
                    continue  # keep the point of the finer (or earlier equal) reply
            cache.points[time_ms] = (price, fetch_index)
        cache.covered = merge_interval(cache.covered, interval)
        cache.times_ms = sorted(cache.points)
        cache.prices = [cache.points[t][0] for t in cache.times_ms]
