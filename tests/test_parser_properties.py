"""Properties of the parser: it raises only its own error on mutilated input, and the changes it
reports add up to the transaction's own balance deltas for every watched account."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from indexer.commands.parse import change_record
from indexer.parser import IN, ParseError, Watch, parse_transaction
from tests.conftest import SOLANA

RECORDED = sorted(path for path in SOLANA.glob("*.json") if "getsignatures" not in path.name)
DOCUMENTS = {path.name: json.loads(path.read_text()) for path in RECORDED}
POOL = [str(Pubkey.from_bytes(bytes([i + 1]) * 32)) for i in range(10)]
MINTS = ["EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", str(Pubkey.from_bytes(bytes([99]) * 32))]
WATCH_ALL = Watch(
    frozenset(POOL[:5])
    | {"3h1zGmCwsRJnVk5BuRNMLsPaQu1y2aqXqXDWYCgrp5UG", "9B5XszUGdMaxCZ7uSQhPzdks5ZQSmWxrmzCSvtJ6Ns6g"}
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _parse_or_own_error(data: bytes | dict[str, Any]) -> None:
    try:
        parsed = parse_transaction(data, WATCH_ALL)
    except ParseError:
        return
    for change in parsed.changes:
        json.dumps(change_record(change, details=True))  # output formatting must not fail either


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(name=st.sampled_from(sorted(DOCUMENTS)), data=st.data())
def test_structural_mutilation_raises_only_parse_errors(name: str, data: st.DataObject) -> None:
    document = copy.deepcopy(DOCUMENTS[name])
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        paths = [path for path in _paths(document) if path]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        if data.draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(json_values)
    _parse_or_own_error(document)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(DOCUMENTS)), data=st.data())
def test_byte_mutilation_raises_only_parse_errors(name: str, data: st.DataObject) -> None:
    raw = bytearray((SOLANA / name).read_bytes())
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(min_value=0, max_value=len(raw)))]
    else:
        for _ in range(data.draw(st.integers(min_value=1, max_value=8))):
            position = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
            raw[position] = data.draw(st.integers(min_value=0, max_value=255))
    _parse_or_own_error(bytes(raw))


@st.composite
def transactions(draw: st.DrawFn) -> tuple[dict[str, Any], set[str]]:
    """A random transaction in jsonParsed or json encoding, and the set of watched wallets."""
    count = draw(st.integers(min_value=1, max_value=8))
    keys = draw(st.lists(st.sampled_from(POOL), min_size=count, max_size=count, unique=True))
    pre = draw(st.lists(st.integers(0, 10**15), min_size=count, max_size=count))
    post = draw(st.lists(st.integers(0, 10**15), min_size=count, max_size=count))
    signers = draw(st.integers(min_value=1, max_value=count))
    pre_tokens, post_tokens = [], []
    for index in draw(st.lists(st.integers(0, count - 1), unique=True, max_size=count)):
        mint = draw(st.sampled_from(MINTS))
        owner = draw(st.sampled_from(POOL))
        for entries in (pre_tokens, post_tokens):
            if draw(st.integers(0, 4)) == 0:
                continue  # a missing entry counts as 0
            entry: dict[str, Any] = {
                "accountIndex": index,
                "mint": mint,
                "uiTokenAmount": {"amount": str(draw(st.integers(0, 10**18))), "decimals": 6},
            }
            if draw(st.integers(0, 3)):
                entry["owner"] = owner
            entries.append(entry)
    meta = {
        "err": None,
        "fee": 5000,
        "preBalances": pre,
        "postBalances": post,
        "preTokenBalances": pre_tokens,
        "postTokenBalances": post_tokens,
        "innerInstructions": [],
    }
    if draw(st.booleans()):
        message: dict[str, Any] = {
            "accountKeys": [{"pubkey": key, "signer": i < signers, "writable": True} for i, key in enumerate(keys)],
            "instructions": [],
        }
    else:
        message = {
            "accountKeys": keys,
            "header": {
                "numRequiredSignatures": signers,
                "numReadonlySignedAccounts": 0,
                "numReadonlyUnsignedAccounts": 0,
            },
            "instructions": [],
        }
    result = {"slot": 1, "blockTime": 2, "meta": meta, "transaction": {"signatures": ["1" * 64], "message": message}}
    watched = set(draw(st.lists(st.sampled_from(POOL), unique=True, max_size=6)))
    return result, watched


@settings(max_examples=400, deadline=None)
@given(case=transactions())
def test_changes_add_up_to_the_balance_deltas(case: tuple[dict[str, Any], set[str]]) -> None:
    result, watched = case
    parsed = parse_transaction(result, Watch(frozenset(watched)))
    meta = result["meta"]
    keys = [k if isinstance(k, str) else k["pubkey"] for k in result["transaction"]["message"]["accountKeys"]]

    expected: dict[tuple[str, str], int] = {}
    for index, key in enumerate(keys):
        if key in watched and meta["postBalances"][index] != meta["preBalances"][index]:
            expected[(key, "SOL")] = meta["postBalances"][index] - meta["preBalances"][index]
    pre = {e["accountIndex"]: e for e in meta["preTokenBalances"]}
    post = {e["accountIndex"]: e for e in meta["postTokenBalances"]}
    for index in pre.keys() | post.keys():
        owner = post.get(index, {}).get("owner") or pre.get(index, {}).get("owner")
        if owner not in watched:
            continue
        mint = (post.get(index) or pre[index])["mint"]
        delta = int(post.get(index, {"uiTokenAmount": {"amount": "0"}})["uiTokenAmount"]["amount"]) - int(
            pre.get(index, {"uiTokenAmount": {"amount": "0"}})["uiTokenAmount"]["amount"]
        )
        if delta:
            expected[(keys[index], mint)] = delta

    reported: dict[tuple[str, str], int] = {}
    for change in parsed.changes:
        signed = change.amount_raw if change.direction == IN else -change.amount_raw
        reported[(change.account, change.asset)] = reported.get((change.account, change.asset), 0) + signed
        assert change.owner in watched
    assert reported == expected


def test_recorded_documents_are_all_parsed() -> None:
    # The property tests start from every recorded transaction; each one parses cleanly.
    for name, document in DOCUMENTS.items():
        parse_transaction(document, WATCH_ALL)
        assert Path(SOLANA / name).exists()
