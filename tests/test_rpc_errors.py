"""The RPC adapter's error translation: every httpx exception class is mapped, recorded node errors
land in the right class with their code, and Retry-After is read in both of its forms."""

from __future__ import annotations

import datetime as dt
import inspect
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from structlog.testing import capture_logs

from indexer.rpc import errors
from indexer.rpc.errors import (
    HTTPX_ERRORS,
    InvalidParams,
    InvalidRequest,
    NodeBehind,
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
    error_for_code,
    error_for_http_status,
    parse_retry_after,
    translate_httpx_errors,
)

RPC_DATA = Path(__file__).parent / "data" / "rpc"


def _httpx_exception_classes() -> list[type[Exception]]:
    """Every exception class httpx exports (its public namespace), found by walking it."""
    return sorted(
        (
            value
            for name, value in vars(httpx).items()
            if not name.startswith("_") and inspect.isclass(value) and issubclass(value, Exception)
        ),
        key=lambda cls: cls.__name__,
    )


def _instance(cls: type[Exception]) -> Exception:
    request = httpx.Request("POST", "http://127.0.0.1:1/")
    if cls is httpx.HTTPStatusError:
        return cls("status", request=request, response=httpx.Response(503, request=request))
    if issubclass(cls, httpx.RequestError):
        return cls("boom", request=request)
    if cls in (httpx.StreamConsumed, httpx.StreamClosed, httpx.ResponseNotRead, httpx.RequestNotRead):
        return cls()
    return cls("boom")


def test_every_httpx_exception_class_is_mapped_exactly() -> None:
    classes = _httpx_exception_classes()
    assert len(classes) >= 28  # httpx 0.29 exports 28; fewer would mean the walk is broken
    missing = [cls.__name__ for cls in classes if cls not in HTTPX_ERRORS]
    assert missing == []


@pytest.mark.parametrize("cls", _httpx_exception_classes(), ids=lambda cls: cls.__name__)
def test_translate_raises_ours_from_the_original(cls: type[Exception]) -> None:
    original = _instance(cls)
    with pytest.raises(RpcError) as caught, translate_httpx_errors("getSlot"):
        raise original
    assert caught.value.__cause__ is original
    assert caught.value.method == "getSlot"
    if cls is httpx.HTTPStatusError:
        assert type(caught.value) is ServerError  # by its response status, 503
        assert caught.value.http_status == 503
    else:
        assert type(caught.value) is HTTPX_ERRORS[cls]


def test_timeouts_and_network_failures_are_transient() -> None:
    for cls in (httpx.ConnectTimeout, httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout):
        assert HTTPX_ERRORS[cls] is RpcTimeout
    for cls in (httpx.ConnectError, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
        assert HTTPX_ERRORS[cls] is RpcConnectionError
    assert issubclass(RpcTimeout, TransientRpcError)
    assert issubclass(RpcConnectionError, TransientRpcError)
    assert issubclass(HTTPX_ERRORS[httpx.UnsupportedProtocol], PermanentRpcError)
    assert issubclass(HTTPX_ERRORS[httpx.InvalidURL], PermanentRpcError)


def _recorded_error(name: str) -> dict[str, Any]:
    document = orjson.loads((RPC_DATA / name).read_bytes())
    error: dict[str, Any] = document["error"]
    return error


@pytest.mark.parametrize(
    ("name", "expected", "code"),
    [
        ("solana_error_-32004_block_not_available_response.json", NodeBehind, -32004),
        ("solana_error_-32007_slot_skipped_snapshot_response.json", NodeBehind, -32007),
        ("solana_error_-32009_slot_skipped_long_term_storage_response.json", NodeBehind, -32009),
        ("solana_error_-32015_tx_version_unsupported_getblock_response.json", TransactionVersionUnsupported, -32015),
        ("solana_error_-32602_could_not_find_account_response.json", InvalidParams, -32602),
        ("solana_error_-32602_invalid_param_wrongsize_response.json", InvalidParams, -32602),
        ("solana_error_410_rpc_call_disabled_response.json", RpcDisabled, 410),
        ("solana_error_429_rpcpool_rate_limit_body.json", RateLimited, 429),
    ],
)
def test_recorded_error_bodies_classify(name: str, expected: type[RpcError], code: int) -> None:
    error = _recorded_error(name)
    result = error_for_code(error["code"], error["message"], method="getBlock")
    assert type(result) is expected
    assert result.code == code
    assert result.message == error["message"]


def test_unknown_code_is_permanent_and_logged() -> None:
    with capture_logs() as logs:
        result = error_for_code(-32099, "something new", method="getSlot")
    assert type(result) is UnclassifiedRpcError
    assert isinstance(result, PermanentRpcError)
    assert logs == [
        {
            "event": "rpc_unclassified_error",
            "log_level": "warning",
            "code": -32099,
            "http_status": None,
            "method": "getSlot",
            "message": "something new",
        }
    ]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (429, RateLimited),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (410, RpcDisabled),
        (401, RpcUnauthorized),
        (403, RpcUnauthorized),
        (404, UnclassifiedRpcError),
    ],
)
def test_http_statuses(status: int, expected: type[RpcError]) -> None:
    result = error_for_http_status(status, method="getSlot")
    assert type(result) is expected
    assert result.http_status == status


def test_http_status_with_a_json_rpc_code_keeps_both() -> None:
    result = error_for_http_status(400, code=-32602, message="Invalid params", method="getSlot")
    assert type(result) is InvalidParams
    assert (result.code, result.http_status) == (-32602, 400)
    limited = error_for_http_status(429, code=429, message="Too many requests", retry_after="7")
    assert isinstance(limited, RateLimited)
    assert (limited.code, limited.http_status, limited.retry_after_s) == (429, 429, 7.0)


def test_retry_after_forms() -> None:
    now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 3 ") == 3.0
    assert parse_retry_after("1.5") == 1.5
    # An HTTP date 30 s after `now`.
    assert parse_retry_after("Fri, 02 Jan 2026 03:04:35 GMT", now=now) == 30.0
    # A date in the past means "now".
    assert parse_retry_after("Fri, 02 Jan 2026 03:00:00 GMT", now=now) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") is None


def test_messages_are_one_line_and_bounded() -> None:
    result = error_for_code(-32602, "line one\nline two " + "x" * 1000)
    assert "\n" not in result.message
    assert len(result.message) == 300
    assert str(result).startswith("line one line two")
    assert str(result).endswith("(code -32602)")


def test_tree_shape() -> None:
    transient = {
        errors.RateLimited,
        errors.ServerError,
        errors.RpcTimeout,
        errors.RpcConnectionError,
        errors.NodeBehind,
    }
    permanent = {
        errors.InvalidParams,
        errors.MethodNotFound,
        errors.InvalidRequest,
        errors.TransactionVersionUnsupported,
        errors.RpcDisabled,
        errors.RpcUnauthorized,
        errors.InvalidResponse,
        errors.NotAMint,
        errors.UnclassifiedRpcError,
    }
    assert all(issubclass(cls, TransientRpcError) for cls in transient)
    assert all(issubclass(cls, PermanentRpcError) for cls in permanent)
    assert not issubclass(InvalidRequest, TransientRpcError)
