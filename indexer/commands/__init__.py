"""Each command module registers its subcommands; the order here is the order of `treasury --help`."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeAlias

from indexer.commands import (
    audit,
    backfill,
    burns,
    daemon,
    demo,
    deposits,
    export,
    ledger,
    parse,
    quote,
    reconcile,
    replay,
    report,
)

if TYPE_CHECKING:
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

Register: TypeAlias = Callable[["Subparsers", Sequence[argparse.ArgumentParser]], None]

COMMANDS: tuple[Register, ...] = (
    parse.register,
    quote.register,
    daemon.register,
    backfill.register,
    demo.register,
    deposits.register,
    ledger.register,
    reconcile.register,
    audit.register,
    burns.register,
    export.register,
    report.register,
    replay.register,
)
