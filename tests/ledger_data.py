"""Deterministic test values for the ledger tests: signatures, addresses and a few ready drafts.

Signatures and addresses are base58 of hashes (valid lengths, deterministic); the real ones are from
the recorded transactions in tests/data/solana (see ../shared/fixtures/SOURCES.md).
"""

from __future__ import annotations

import hashlib
from typing import Any

import based58

from ledger_client import Draft, card_topup_entry, crypto_deposit_entry, deposit_key

# Real mainnet values: sol_transfer_with_memo_jsonparsed_response.json (0.001 SOL with memo "transfer").
REAL_SIGNATURE = "5QMfuqThWSMMpLCRe3tk7qn7iSwWKfJV8EvD1ZPvyqAWa7Z2JftZ4rPq8YCxCwzSykX7dMkDB8RrovQMoL9ZZWKY"
REAL_RECEIVER = "2b7iQq3PbWwWTotRSDFNXT9DauU418aCHK4jcAzETUem"
TREASURY = "9Nc6u9ft3uAr6DSaqHijFjQS53hZPDRL2LoVYvH4vK5H"


def signature(n: int | str) -> str:
    """A valid (64-byte) transaction signature, the same for the same n."""
    return based58.b58encode(hashlib.sha512(f"signature-{n}".encode()).digest()).decode()


def address(n: int | str) -> str:
    """A valid (32-byte) Solana address, the same for the same n."""
    return based58.b58encode(hashlib.sha256(f"address-{n}".encode()).digest()).decode()


def session_id(n: int | str) -> str:
    """A Checkout Session id like Stripe's (letters, digits and underscores)."""
    return f"cs_test_{n}".replace("-", "_")


def topup(n: int | str, customer: str, amount_micros: int, **evidence: Any) -> Draft:
    return card_topup_entry(session_id(n), customer, amount_micros, {"session": session_id(n), **evidence})


def usdc_deposit(n: int | str, customer: str | None, amount_raw: int, *, sender: str | None = None) -> Draft:
    """A USDC deposit: 1 USDC (6 decimals) = 1 USD, so credits equal amount_raw micro-USD."""
    key = deposit_key(signature(n), TREASURY, "USDC")
    return crypto_deposit_entry(
        key, customer, "USDC", amount_raw, amount_raw, 0, amount_raw, 0, 0, {"n": str(n)}, sender=sender
    )
