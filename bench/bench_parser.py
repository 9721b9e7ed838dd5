"""Parser throughput on the recorded transactions: decode + extract, beside `orjson.loads` alone and
beside solders' typed decode (`GetTransactionResp.from_json`), measured in one run on the same bytes.

Each transaction is parsed with a realistic watch set: the account that gained the most lamports and
the first owner of a token balance, so every transaction yields changes to annotate (memo, sender,
instruction) as real deposits do. Times are the best of several repeats, per transaction.
"""

from __future__ import annotations

import timeit
from pathlib import Path
from typing import Any

import orjson
from solders.rpc.responses import GetTransactionResp

from bench.report import write_section
from indexer.config import DEFAULT_DUST_RAW
from indexer.parser import Watch, parse_transaction

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "solana"
NUMBER = 200
REPEAT = 7


def _recorded() -> list[tuple[str, bytes, Watch, str]]:
    cases = []
    for path in sorted(DATA.glob("*.json")):
        raw = path.read_bytes()
        document = orjson.loads(raw)
        result = document.get("result", document) if isinstance(document, dict) else None
        if not isinstance(result, dict) or "meta" not in result:
            continue
        cases.append((path.name, raw, _watch(result), _encoding(result)))
    return cases


def _encoding(result: dict[str, Any]) -> str:
    transaction = result["transaction"]
    if isinstance(transaction, list):
        return "base64"
    return "jsonParsed" if isinstance(transaction["message"]["accountKeys"][0], dict) else "json"


def _watch(result: dict[str, Any]) -> Watch:
    meta = result["meta"]
    wallets: set[str] = set()
    transaction = result["transaction"]
    deltas = [after - before for before, after in zip(meta["preBalances"], meta["postBalances"], strict=True)]
    richest = max(range(len(deltas)), key=deltas.__getitem__)
    if not isinstance(transaction, list):
        keys = [k["pubkey"] if isinstance(k, dict) else k for k in transaction["message"]["accountKeys"]]
        loaded = meta.get("loadedAddresses") or {}
        if not isinstance(transaction["message"]["accountKeys"][0], dict):
            keys += loaded.get("writable", []) + loaded.get("readonly", [])
        wallets.add(keys[richest])
    for entry in meta.get("postTokenBalances") or []:
        if entry.get("owner"):
            wallets.add(entry["owner"])
            break
    if not wallets:
        # base64 replies without token owners: watch the fee payer, decoded outside the timed code.
        import base64  # noqa: PLC0415

        from solders.transaction import VersionedTransaction  # noqa: PLC0415

        wire = VersionedTransaction.from_bytes(base64.b64decode(transaction[0]))
        wallets.add(str(wire.message.account_keys[richest]))
    return Watch(frozenset(wallets), dust_raw=DEFAULT_DUST_RAW)


def _best_us(function: Any) -> float:
    return min(timeit.repeat(function, number=NUMBER, repeat=REPEAT)) / NUMBER * 1e6


def _solders_json(raw: bytes) -> str:
    document = orjson.loads(raw)
    if "jsonrpc" not in document:
        document = {"jsonrpc": "2.0", "result": document, "id": 1}
    return orjson.dumps(document).decode()


def run() -> None:
    rows = []
    for name, raw, watch, encoding in _recorded():
        changes = len(parse_transaction(raw, watch).changes)
        orjson_us = _best_us(lambda raw=raw: orjson.loads(raw))
        parse_us = _best_us(lambda raw=raw, watch=watch: parse_transaction(raw, watch))
        text = _solders_json(raw)
        try:
            GetTransactionResp.from_json(text)
            solders_us: float | None = _best_us(lambda text=text: GetTransactionResp.from_json(text))
        except Exception:
            solders_us = None
        rows.append((name, encoding, len(raw), changes, orjson_us, parse_us, solders_us))

    total_orjson = sum(row[4] for row in rows)
    total_parse = sum(row[5] for row in rows)
    typed = [row for row in rows if row[6] is not None]
    typed_orjson = sum(row[4] for row in typed)
    typed_parse = sum(row[5] for row in typed)
    typed_solders = sum(row[6] or 0.0 for row in typed)
    count = len(rows)

    lines = [
        f"{count} recorded transactions ({sum(row[2] for row in rows):,} bytes), best of {REPEAT} × {NUMBER} "
        "runs each; times are microseconds per transaction.",
        "",
        "| measure | mean µs / tx | transactions / s | ratio to `orjson.loads` |",
        "|---|---:|---:|---:|",
        f"| `orjson.loads` alone | {total_orjson / count:.1f} | {count / total_orjson * 1e6:,.0f} | 1.00 |",
        f"| decode + extract (`parse_transaction`) | {total_parse / count:.1f} | {count / total_parse * 1e6:,.0f} "
        f"| {total_parse / total_orjson:.2f} |",
        "",
        f"solders' typed decode accepted {len(typed)} of {count} replies; on those:",
        "",
        "| measure | mean µs / tx | ratio to `orjson.loads` |",
        "|---|---:|---:|",
        f"| `orjson.loads` alone | {typed_orjson / len(typed):.1f} | 1.00 |",
        f"| decode + extract | {typed_parse / len(typed):.1f} | {typed_parse / typed_orjson:.2f} |",
        f"| `GetTransactionResp.from_json` (decode only) | {typed_solders / len(typed):.1f} "
        f"| {typed_solders / typed_orjson:.2f} |",
        "",
        f"Target: decode + extract within 1.5× of `orjson.loads` (measured {total_parse / total_orjson:.2f}×) "
        f"and faster than solders' typed decode (measured {typed_parse / typed_solders:.2f}× of its time).",
        "",
        "<details><summary>per transaction</summary>",
        "",
        "| file | encoding | bytes | changes | orjson µs | parse µs | solders µs |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, encoding, size, changes, orjson_us, parse_us, solders_us in rows:
        solders_text = f"{solders_us:.1f}" if solders_us is not None else "rejected"
        lines.append(
            f"| {name} | {encoding} | {size:,} | {changes} | {orjson_us:.1f} | {parse_us:.1f} | {solders_text} |"
        )
    lines += ["", "</details>"]
    body = "\n".join(lines)
    write_section("parser", "Parser throughput (issue 2)", body)
    print(body)
