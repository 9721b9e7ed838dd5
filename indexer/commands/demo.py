"""`treasury demo [--keep DIR]`: the whole pipeline offline on bundled real mainnet data (indexer/demo.py)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from indexer.cli import EXIT_FAILED, EXIT_OK, UsageError
from indexer.config import Settings


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], parents: Sequence[argparse.ArgumentParser]
) -> None:
    command = subparsers.add_parser(
        "demo",
        parents=parents,
        help="the whole pipeline offline on bundled recorded mainnet data",
        description="Serve bundled real mainnet transactions and a real SOL price series on loopback, run the "
        "backfill into a fresh SQLite ledger in a temporary folder, and print what was credited and why, the "
        "balances and `ledger verify`. Touches no network and none of your settings.",
    )
    command.add_argument("--keep", metavar="DIR", help="keep the demo ledger in DIR instead of a temporary folder")
    command.set_defaults(handler=run)


def run(args: argparse.Namespace, _settings: Settings) -> int:
    from indexer import demo, logs  # noqa: PLC0415 - loads the servers only for this command

    logs.configure(level=logging.WARNING)  # the demo prints its own report; per-deposit logs are noise here
    keep = Path(args.keep) if args.keep else None
    if keep is not None and keep.exists() and not keep.is_dir():
        raise UsageError(f"demo: --keep {args.keep}: not a directory")
    result = demo.run(keep)
    return EXIT_OK if not result.problems and result.proofs_clean else EXIT_FAILED
