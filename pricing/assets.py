"""The asset table: which mints the treasury accepts and how each is priced.

The table is configuration (DESIGN.md §1): it is checked against the chain at start-up and assets are
never matched by symbol or name, only by mint address.
"""

from __future__ import annotations

import dataclasses
from typing import Final

TOKEN_PROGRAM_ID: Final = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN_2022_PROGRAM_ID: Final = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
SOL_SYMBOL: Final = "SOL"
SOL_DECIMALS: Final = 9


@dataclasses.dataclass(frozen=True, slots=True)
class Asset:
    """One accepted asset. `mint` and `token_program` are None for native SOL."""

    symbol: str
    mint: str | None
    decimals: int
    token_program: str | None
    # "market": priced from the market (SOL); "stable": 1 USD per token; "osr": the OSR policy.
    price_rule: str

    @property
    def key(self) -> str:
        """The asset's identity in balance changes: "SOL" or the mint address."""
        return self.mint if self.mint is not None else SOL_SYMBOL


DEFAULT_ASSETS: Final[tuple[Asset, ...]] = (
    Asset(SOL_SYMBOL, None, SOL_DECIMALS, None, "market"),
    Asset("USDC", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", 6, TOKEN_PROGRAM_ID, "stable"),
    Asset("USDT", "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", 6, TOKEN_PROGRAM_ID, "stable"),
    Asset("PYUSD", "2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo", 6, TOKEN_2022_PROGRAM_ID, "stable"),
    Asset("OSR", "E2grvu8fyeeuVaxj2DrHVBqv8j21jK3vyJpXG8FJjJNc", 9, TOKEN_PROGRAM_ID, "osr"),
)

PRICE_RULES: Final = frozenset({"market", "stable", "osr"})


class AssetTable:
    """Lookup of accepted assets by mint (or "SOL") and by symbol."""

    __slots__ = ("_by_key", "_by_symbol", "assets")

    def __init__(self, assets: tuple[Asset, ...] = DEFAULT_ASSETS) -> None:
        self.assets = assets
        self._by_key = {asset.key: asset for asset in assets}
        self._by_symbol = {asset.symbol: asset for asset in assets}
        if len(self._by_key) != len(assets) or len(self._by_symbol) != len(assets):
            raise ValueError("the asset table names a mint or a symbol twice")

    def by_key(self, key: str) -> Asset | None:
        """The asset whose mint is `key` ("SOL" for native SOL), or None when not accepted."""
        return self._by_key.get(key)

    def by_symbol(self, symbol: str) -> Asset | None:
        return self._by_symbol.get(symbol)

    def resolve(self, symbol_or_mint: str) -> Asset | None:
        """An asset named by symbol (case-insensitive) or by mint address."""
        return self._by_key.get(symbol_or_mint) or self._by_symbol.get(symbol_or_mint.upper())

    @property
    def mints(self) -> tuple[str, ...]:
        return tuple(asset.mint for asset in self.assets if asset.mint is not None)
