"""A loopback replay of the Solana chain for tests, the demo and benchmarks.

`ReplayChain` (chain.py) models a chain built from recorded getTransaction replies; `ReplayServer`
(server.py) serves it over HTTP JSON-RPC and websocket pubsub on 127.0.0.1 with scripted `Faults`
(faults.py); `measure_fetch_throughput` (throughput.py) measures the fetch-only serve rate.
"""

from __future__ import annotations

from indexer.replay.chain import (
    CONFIRMED,
    DROPPED,
    FINALIZED,
    ChainTransaction,
    ReplayChain,
    ReplayDataError,
    ReplayError,
    TokenBalance,
)
from indexer.replay.faults import Faults
from indexer.replay.server import ReplayServer

__all__ = [
    "CONFIRMED",
    "DROPPED",
    "FINALIZED",
    "ChainTransaction",
    "Faults",
    "ReplayChain",
    "ReplayDataError",
    "ReplayError",
    "ReplayServer",
    "TokenBalance",
]
