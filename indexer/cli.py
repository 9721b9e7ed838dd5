"""The `treasury` command line: argument parsing, settings, and the mapping of errors to exit status.

Exit status (INTERFACE.md): 0 success, 1 the work failed, 2 bad usage or bad input — always with a
one-line message on stderr naming what was wrong, never a traceback (set TREASURY_DEBUG=1 to get one
for an unexpected failure). Each command lives in `indexer.commands.<name>` and registers itself here.

Errors (raised by commands, mapped here):
    CommandError                 exit 1: the work failed
      └── UsageError             exit 2: bad usage or bad input
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

from indexer import logs
from indexer.config import FIELDS, ConfigError, Settings, load_settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """The work failed (exit 1). The message is one line for the operator."""

    exit_status = EXIT_FAILED


class UsageError(CommandError):
    """Bad usage or bad input (exit 2)."""

    exit_status = EXIT_USAGE


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit status 2 (its default prints the whole usage)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


Handler = Callable[[argparse.Namespace, Settings], int]


def _settings_options() -> argparse.ArgumentParser:
    """Options that override settings; accepted before or after the command name."""
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("settings (override TREASURY_* variables and the config file)")
    group.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="TOML configuration file")
    for field in FIELDS:
        if field.option:
            group.add_argument(
                field.flag,
                dest=f"setting_{field.name}",
                metavar=field.name.upper(),
                default=argparse.SUPPRESS,
                help=field.help,
            )
    return parent


def build_parser() -> argparse.ArgumentParser:
    from indexer.commands import COMMANDS  # noqa: PLC0415 - commands import this module

    common = _settings_options()
    parser = _Parser(
        prog="treasury",
        description="System R treasury: deposit indexer and reconciliation worker.",
        parents=[common],
    )
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser
    )
    subparsers.required = True
    for register in COMMANDS:
        register(subparsers, [common])
    return parser


def main(argv: Sequence[str] | None = None) -> NoReturn:
    sys.exit(run(argv))


def run(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(arguments)
        options = {
            name.removeprefix("setting_"): value for name, value in vars(args).items() if name.startswith("setting_")
        }
        settings = load_settings(config_path=getattr(args, "config", None), options=options)
        logs.configure()
        handler: Handler = args.handler
        return handler(args, settings)
    except ConfigError as exc:
        _say(f"treasury: configuration: {exc}")
        return EXIT_USAGE
    except CommandError as exc:
        message = str(exc)
        _say(message if message.startswith("treasury") else f"treasury: {message}")
        return exc.exit_status
    except KeyboardInterrupt:
        _say("treasury: interrupted")
        return 130
    except BrokenPipeError:
        # The reader of our output went away (e.g. `| head`): not an error of ours.
        sys.stderr.close()
        return EXIT_OK
    except Exception as exc:
        if os.environ.get("TREASURY_DEBUG"):
            traceback.print_exc()
        _say(f"treasury: internal error: {type(exc).__name__}: {_one_line(str(exc))}")
        return EXIT_FAILED


def _say(message: str) -> None:
    print(_one_line(message), file=sys.stderr)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:1000]
