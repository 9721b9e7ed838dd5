"""Solana JSON-RPC adapter: `SolanaRpc` (client.py), its error tree (errors.py) and SPL account
layouts (accounts.py). Everything callers need is importable from `indexer.rpc`."""

from __future__ import annotations

from indexer.rpc.accounts import AccountLayoutError, MintInfo, decode_mint
from indexer.rpc.client import AccountInfo, SignatureInfo, SignatureStatus, SolanaRpc, TokenAccount
from indexer.rpc.errors import (
    InvalidParams,
    InvalidRequest,
    InvalidResponse,
    MethodNotFound,
    NodeBehind,
    NotAMint,
    PermanentRpcError,
    RateLimited,
    RpcConnectionError,
    RpcDisabled,
    RpcError,
    RpcTimeout,
    RpcUnauthorized,
    ServerError,
    TransactionVersionUnsupported,
    TransientRpcError,
    UnclassifiedRpcError,
)

__all__ = [
    "AccountInfo",
    "AccountLayoutError",
    "InvalidParams",
    "InvalidRequest",
    "InvalidResponse",
    "MethodNotFound",
    "MintInfo",
    "NodeBehind",
    "NotAMint",
    "PermanentRpcError",
    "RateLimited",
    "RpcConnectionError",
    "RpcDisabled",
    "RpcError",
    "RpcTimeout",
    "RpcUnauthorized",
    "ServerError",
    "SignatureInfo",
    "SignatureStatus",
    "SolanaRpc",
    "TokenAccount",
    "TransactionVersionUnsupported",
    "TransientRpcError",
    "UnclassifiedRpcError",
    "decode_mint",
]
