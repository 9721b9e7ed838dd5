"""structlog set-up: JSON lines when stderr is not a terminal, readable lines when it is.

Logs go to stderr so that command output on stdout stays machine-readable. Values of type Secret
render as '***' and keys that name credentials are masked, so a careless log call cannot leak one.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from indexer.config import Secret

_SECRET_KEY_PARTS = ("api_key", "password", "secret", "token_value", "authorization")


def _mask_secrets(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if isinstance(value, Secret) or any(part in key.lower() for part in _SECRET_KEY_PARTS):
            event[key] = "***"
    return event


def configure(*, json_lines: bool | None = None, level: int = logging.INFO) -> None:
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    renderer: Any = structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _mask_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
