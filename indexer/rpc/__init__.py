"""Solana JSON-RPC adapter: `SolanaRpc` (client.py, HTTP), `SolanaPubsub` (pubsub.py, websocket),
their one error tree (errors.py) and SPL account layouts (accounts.py). Everything callers need is
importable from `indexer.rpc`."""

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
    PubsubClosed,
    PubsubSilent,
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
from indexer.rpc.pubsub import Notification, SolanaPubsub

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
    "Notification",
    "PermanentRpcError",
    "PubsubClosed",
    "PubsubSilent",
    "RateLimited",
    "RpcConnectionError",
    "RpcDisabled",
    "RpcError",
    "RpcTimeout",
    "RpcUnauthorized",
    "ServerError",
    "SignatureInfo",
    "SignatureStatus",
    "SolanaPubsub",
    "SolanaRpc",
    "TokenAccount",
    "TransactionVersionUnsupported",
    "TransientRpcError",
    "UnclassifiedRpcError",
    "decode_mint",
]
