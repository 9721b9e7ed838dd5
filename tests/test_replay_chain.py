"""The replay chain served on loopback, read with the real client: pagination over thousands of
signatures and inside busy slots, commitments, encodings as recorded, synthesis of fresh transactions."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import based58
import orjson
import pytest

from indexer.parser import Watch, parse_transaction
from indexer.replay import CONFIRMED, DROPPED, FINALIZED, ReplayChain, ReplayDataError, ReplayError, ReplayServer
from indexer.replay.chain import bare_result
from indexer.rpc import SignatureInfo, SignatureStatus
from tests.conftest import SOLANA
from tests.replay_support import USDC, USDC_HISTORY, fast_rpc, recorded_chain, run

SOL_2025 = "sol_transfer_mainnet_2025_jsonparsed_response.json"  # 2kHbPU…, slot 399683256
SOL_2025_SIGNATURE = "2kHbPUGzehenUXQbBfAVZGcuTrSUVDMEyU2aGcjFbuUAJkG28CyQPCGZF68u369MU7WHMvJboyioqyihvtR75nLn"
SOL_2025_SLOT = 399683256
SOL_2025_RECIPIENT = "3eF3iBQqi2DmDLS7o9y8gG7necF5VBbwYy5gqF7sh899"  # account key 1
VOTE_SIGNATURE = "4zExa66hUSr28i2ma6EJwEsm3nZo4VFryEyRYE5Zrr4Q6dZpP1ctzsoMqUhLnp6iHGPp5MB722rZXRBKg927WXN9"
VOTE_FILES = ("vote_tx_base64_response.json", "vote_tx_json_response.json", "vote_tx_jsonparsed_response.json")


def _recorded(name: str) -> bytes:
    return (SOLANA / name).read_bytes()


@pytest.fixture
def busy() -> Iterator[tuple[ReplayServer, list[str]]]:
    """2,503 clones of 2kHbPU…, 7 to a slot, after the original: the recipient's history is 2,504 long."""
    chain = ReplayChain.from_replies([_recorded(SOL_2025)])
    clones = chain.synthesise(2503, per_slot=7, seed="busy")
    with ReplayServer(chain) as server:
        yield server, clones


def _signatures(page: list[SignatureInfo]) -> list[str]:
    return [item.signature for item in page]


def test_pages_of_a_long_history(busy: tuple[ReplayServer, list[str]]) -> None:
    server, clones = busy
    newest_first = [*reversed(clones), SOL_2025_SIGNATURE]

    async def go() -> list[list[SignatureInfo]]:
        pages = []
        async with fast_rpc(server) as rpc:
            before = None
            for _ in range(10):  # 2,504 = 1,000 + 1,000 + 504, then an empty page
                page = await rpc.get_signatures_for_address(SOL_2025_RECIPIENT, before=before)
                pages.append(page)
                if not page:
                    break
                before = page[-1].signature
        return pages

    pages = run(go())
    assert [len(page) for page in pages] == [1000, 1000, 504, 0]
    assert [signature for page in pages for signature in _signatures(page)] == newest_first
    # Clone i sits in slot 399683257 + i // 7: the first page starts with clone 2502 in slot +357.
    assert pages[0][0].slot == SOL_2025_SLOT + 1 + 2502 // 7
    assert pages[2][-1].slot == SOL_2025_SLOT


def test_cursors_inside_a_busy_slot(busy: tuple[ReplayServer, list[str]]) -> None:
    server, clones = busy

    async def go() -> tuple[list[str], list[str], list[str], list[str]]:
        async with fast_rpc(server) as rpc:
            # Clone 702 is position 2 of 7 in its slot (702 = 7 × 100 + 2).
            after_702 = await rpc.get_signatures_for_address(SOL_2025_RECIPIENT, before=clones[702], limit=3)
            # until clone 2000 (position 5 of slot +285): newer ones are 2001…2502.
            until_2000 = await rpc.get_signatures_for_address(SOL_2025_RECIPIENT, until=clones[2000])
            # both cursors in the same slot (700…706): strictly between 705 and 701.
            inside = await rpc.get_signatures_for_address(SOL_2025_RECIPIENT, before=clones[705], until=clones[701])
            # a page boundary inside a slot: limit 5 from the newest splits slot +357 (2499…2502).
            split = await rpc.get_signatures_for_address(SOL_2025_RECIPIENT, limit=5)
        return _signatures(after_702), _signatures(until_2000), _signatures(inside), _signatures(split)

    after_702, until_2000, inside, split = run(go())
    assert after_702 == [clones[701], clones[700], clones[699]]  # rest of slot +100, then slot +99
    assert until_2000 == list(reversed(clones[2001:]))
    assert len(until_2000) == 502
    assert inside == [clones[704], clones[703], clones[702]]
    assert split == [clones[2502], clones[2501], clones[2500], clones[2499], clones[2498]]


def test_limit_bounds(busy: tuple[ReplayServer, list[str]]) -> None:
    server, _clones = busy

    async def go() -> int:
        async with fast_rpc(server) as rpc:
            return len(await rpc.get_signatures_for_address(SOL_2025_RECIPIENT, limit=1))

    assert run(go()) == 1
    with pytest.raises(ValueError, match="limit"):
        run(_page_with_limit(server, 1001))


async def _page_with_limit(server: ReplayServer, limit: int) -> list[SignatureInfo]:
    async with fast_rpc(server) as rpc:
        return await rpc.get_signatures_for_address(SOL_2025_RECIPIENT, limit=limit)


def test_unknown_before_gives_an_empty_page_and_unknown_until_is_ignored() -> None:
    with ReplayServer(recorded_chain()) as server:

        async def go() -> tuple[list[str], list[str]]:
            async with fast_rpc(server) as rpc:
                unknown_before = await rpc.get_signatures_for_address(USDC, before="1" * 64)
                unknown_until = await rpc.get_signatures_for_address(USDC, until="1" * 64)
            return _signatures(unknown_before), _signatures(unknown_until)

        unknown_before, unknown_until = run(go())
    assert unknown_before == []  # agave: a `before` it cannot find yields nothing
    assert unknown_until == USDC_HISTORY  # and an `until` it cannot find is ignored


def test_confirmed_then_finalized_or_dropped() -> None:
    chain = ReplayChain.from_replies([_recorded(SOL_2025)])
    live, doomed = chain.synthesise(2, per_slot=1, seed="live", commitment=CONFIRMED)
    # The clones sit in slots 399683257 and 399683258.
    with ReplayServer(chain) as server:

        async def look() -> tuple[list[str], list[str], bytes | None, bytes | None, list[SignatureStatus | None]]:
            async with fast_rpc(server) as rpc:
                final = await rpc.get_signatures_for_address(SOL_2025_RECIPIENT)
                confirmed = await rpc.get_signatures_for_address(SOL_2025_RECIPIENT, commitment="confirmed")
                return (
                    _signatures(final),
                    _signatures(confirmed),
                    await rpc.get_transaction(live),
                    await rpc.get_transaction(live, commitment="confirmed"),
                    await rpc.get_signature_statuses([live, doomed]),
                )

        final, confirmed, at_finalized, at_confirmed, statuses = run(look())
        assert final == [SOL_2025_SIGNATURE]
        assert confirmed == [doomed, live, SOL_2025_SIGNATURE]
        assert at_finalized is None
        assert at_confirmed is not None and orjson.loads(at_confirmed)["transaction"]["signatures"] == [live]
        # The tip is 399683258: the first clone has 1 confirmation, the second 0.
        assert statuses == [
            SignatureStatus(SOL_2025_SLOT + 1, 1, None, CONFIRMED),
            SignatureStatus(SOL_2025_SLOT + 2, 0, None, CONFIRMED),
        ]

        chain.finalize(live)
        chain.drop(doomed)
        final, confirmed, at_finalized, _at_confirmed, statuses = run(look())
        assert final == [live, SOL_2025_SIGNATURE]
        assert confirmed == [live, SOL_2025_SIGNATURE]
        assert at_finalized is not None
        assert statuses == [SignatureStatus(SOL_2025_SLOT + 1, None, None, FINALIZED), None]
        assert chain.get(doomed) is not None and chain.get(doomed).status == DROPPED  # type: ignore[union-attr]
    with pytest.raises(ReplayError, match="not confirmed"):
        chain.finalize(SOL_2025_SIGNATURE)


def test_each_encoding_is_served_as_recorded() -> None:
    for name in VOTE_FILES:
        chain = ReplayChain.from_replies([_recorded(name)])
        with ReplayServer(chain) as server:

            async def go() -> bytes | None:
                async with fast_rpc(server) as rpc:
                    return await rpc.get_transaction(VOTE_SIGNATURE)  # asks for jsonParsed

            reply = run(go())
        recorded = _recorded(name)
        assert reply is not None
        assert reply in recorded
        assert orjson.loads(reply) == orjson.loads(recorded)["result"]


def test_replies_without_slot_and_block_time() -> None:
    name = "ata_create_transfer_memo_v1_json_block_tx.json"  # one entry of a getBlock: no slot, no blockTime
    chain = ReplayChain()
    with pytest.raises(ReplayDataError, match="slot"):
        chain.add(_recorded(name))
    added = chain.add(_recorded(name), slot=1000, block_time=1_700_000_000)
    # Its memo v1 instruction carries the 18 bytes "Hello from Sol.Net" (base58 41AM49hyuktMKJeRjL6mANNBd).
    assert added.memo == "[18] Hello from Sol.Net"
    document = orjson.loads(added.reply)
    assert (document["slot"], document["blockTime"]) == (1000, 1_700_000_000)
    assert document["transaction"] == orjson.loads(_recorded(name))["transaction"]


def test_from_folder(tmp_path: Path) -> None:
    with pytest.raises(ReplayDataError, match=r"^ata_create_transfer_memo_v1_json_block_tx\.json: "):
        ReplayChain.from_folder(SOLANA)
    chain = ReplayChain.from_folder(SOLANA, skip_unusable=True)
    # 26 files: the getSignaturesForAddress reply, the getBlock entry and two of the three vote
    # encodings (same signature) are skipped.
    assert len(chain.transactions()) == 22
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ReplayDataError, match=r"^bad\.json: "):
        ReplayChain.from_folder(tmp_path)


def test_duplicate_signature_is_refused() -> None:
    chain = ReplayChain.from_replies([_recorded(SOL_2025)])
    with pytest.raises(ReplayDataError, match="already on the chain"):
        chain.add(_recorded(SOL_2025))


@pytest.mark.parametrize(
    ("name", "wallet"),
    [
        (SOL_2025, SOL_2025_RECIPIENT),  # jsonParsed
        ("sol_transfer_computebudget_memo_v0_json_response.json", "AjWkS35VV8eptekzw59fAyXXQRXjcwanPezL4EDQfSd8"),
        ("sol_transfer_devnet_base64_result.json", None),  # base64: signature patched in the bytes
    ],
)
def test_synthesised_clones_have_fresh_signatures(name: str, wallet: str | None) -> None:
    chain = ReplayChain.from_replies([_recorded(name)])
    template = chain.transactions()[0]
    clones = chain.synthesise(5, per_slot=2, seed="clone", first_slot=5000, first_block_time=1_800_000_000)
    assert len(set(clones)) == 5
    assert template.signature not in clones
    watch = Watch(frozenset({wallet or template.keys[1]}))
    for index, signature in enumerate(clones):
        assert len(based58.b58decode(signature.encode())) == 64
        clone = chain.get(signature)
        assert clone is not None
        parsed = parse_transaction(clone.reply, watch)
        assert parsed.signature == signature
        assert parsed.slot == 5000 + index // 2
        assert parsed.block_time == 1_800_000_000 + (index // 2) * 4 // 10
        original = parse_transaction(template.reply, watch)
        assert original.changes  # the watched wallet received SOL in the template
        assert [(c.asset, c.amount_raw, c.direction) for c in parsed.changes] == [
            (c.asset, c.amount_raw, c.direction) for c in original.changes
        ]
    if template.encoding == "base64":
        # Only the 64 signature bytes after the 1-byte count differ.
        before = base64.b64decode(orjson.loads(template.reply)["transaction"][0])
        after = base64.b64decode(orjson.loads(chain.get(clones[0]).reply)["transaction"][0])  # type: ignore[union-attr]
        assert before[0] == after[0] == 1
        assert before[65:] == after[65:]
        assert after[1:65] == based58.b58decode(clones[0].encode())


def test_bare_result_keeps_the_recorded_bytes() -> None:
    wrapped = _recorded(SOL_2025)
    bare = bare_result(wrapped)
    assert bare in wrapped
    assert bare.startswith(b"{") and bare.endswith(b"}")
    assert bare_result(bare) == bare
    with pytest.raises(ReplayDataError, match="JSON-RPC error"):
        bare_result(b'{"jsonrpc":"2.0","error":{"code":-32004,"message":"x"},"id":1}')
