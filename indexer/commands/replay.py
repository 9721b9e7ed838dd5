"""`treasury replay serve --data DIR`: serve recorded getTransaction replies as a Solana node on
loopback (HTTP JSON-RPC and websocket), for manual runs and for benchmarks that want the server in
its own process. Prints one JSON line with the URLs when ready; SIGINT or SIGTERM stops it."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import orjson

from indexer.cli import EXIT_OK, UsageError
from indexer.config import Settings
from indexer.replay import ReplayChain, ReplayDataError, ReplayServer
from indexer.replay.mints import add_asset_mints

_WAIT_S = 1.0  # the main thread wakes this often to see a stop request


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], parents: Sequence[argparse.ArgumentParser]
) -> None:
    command = subparsers.add_parser(
        "replay",
        parents=parents,
        help="serve recorded transactions as a loopback Solana node",
        description="A loopback Solana node (HTTP JSON-RPC and websocket) answering from recorded replies.",
    )
    actions = command.add_subparsers(dest="replay_command", metavar="ACTION", required=True)
    serve = actions.add_parser(
        "serve",
        parents=parents,
        help="serve a folder of recorded getTransaction replies",
        description="Serve every *.json getTransaction reply in DIR (any encoding) on 127.0.0.1 until "
        "SIGINT or SIGTERM. Prints {rpc_url, ws_url, transactions} as one JSON line when ready.",
    )
    serve.add_argument("--data", required=True, metavar="DIR", help="folder of recorded getTransaction replies")
    serve.add_argument("--port", type=_port, default=0, help="HTTP JSON-RPC port (default: any free port)")
    serve.add_argument("--ws-port", type=_port, default=0, help="websocket port (default: any free port)")
    serve.add_argument(
        "--synthesise",
        type=_count,
        default=0,
        metavar="N",
        help="also serve N clones of the recorded transactions with fresh signatures (benchmarks)",
    )
    serve.add_argument("--per-slot", type=_positive, default=4, metavar="N", help="synthesised transactions per slot")
    serve.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    folder = Path(args.data)
    if not folder.is_dir():
        raise UsageError(f"replay serve: --data {folder}: not a folder")
    try:
        chain = ReplayChain.from_folder(folder, skip_unusable=True)
    except ReplayDataError as exc:
        raise UsageError(f"replay serve: {exc}") from None
    if not chain.transactions():
        raise UsageError(f"replay serve: --data {folder}: no usable getTransaction replies")
    add_asset_mints(chain, settings.asset_table)
    if args.synthesise:
        chain.synthesise(args.synthesise, per_slot=args.per_slot)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {number: signal.signal(number, on_signal) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        with ReplayServer(chain, port=args.port, ws_port=args.ws_port) as server:
            line = {"rpc_url": server.rpc_url, "ws_url": server.ws_url, "transactions": len(chain.transactions())}
            sys.stdout.buffer.write(orjson.dumps(line) + b"\n")
            sys.stdout.flush()
            while not stop.wait(_WAIT_S):
                pass
    except RuntimeError as exc:  # the server could not start (e.g. the port is taken)
        raise UsageError(f"replay serve: {exc}") from None
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return EXIT_OK


def _port(text: str) -> int:
    value = _count(text)
    if value > 65535:
        raise argparse.ArgumentTypeError("a port is at most 65535")
    return value


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}")
    return int(text)


def _positive(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
