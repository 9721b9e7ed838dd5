"""Mint accounts for the replay chain: the recorded PYUSD and USDC mint accounts bundled with the
package (real mainnet bytes, see tests/data/rpc and ../shared/fixtures/SOURCES.md), and synthesised
82-byte mints with the right decimals and owner program for any other asset of the table."""

from __future__ import annotations

import base64
from importlib import resources
from typing import Final

import orjson

from indexer.replay.chain import ReplayChain
from pricing.assets import AssetTable

_DATA: Final = resources.files("indexer.replay") / "data"
PYUSD_MINT: Final = "2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo"
USDC_MINT: Final = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


def recorded_mint_data() -> dict[str, bytes]:
    """Account data of the recorded mints, by mint address."""
    pyusd = base64.b64decode((_DATA / "pyusd_mint_account_data_base64.txt").read_text().strip())
    usdc_reply = orjson.loads((_DATA / "usdc_mint_getaccountinfo_base64_response.json").read_bytes())
    usdc = base64.b64decode(usdc_reply["result"]["value"]["data"][0])
    return {PYUSD_MINT: pyusd, USDC_MINT: usdc}


def add_asset_mints(chain: ReplayChain, assets: AssetTable | None = None) -> None:
    """Register a mint account for every token of the asset table: the recorded bytes where the
    package has them, otherwise a synthesised mint (authorities revoked) with the table's decimals."""
    recorded = recorded_mint_data()
    for asset in (assets or AssetTable()).assets:
        if asset.mint is None or asset.token_program is None:
            continue
        chain.add_mint(
            asset.mint, decimals=asset.decimals, token_program=asset.token_program, data=recorded.get(asset.mint)
        )
