"""Attribution order (DESIGN.md §3): memo reference, then linked sender wallet, else suspense."""

from __future__ import annotations

import re

from indexer.attribution import LINKED_WALLET, MEMO, SUSPENSE, attribute, references_in

PATTERN = re.compile(r"\b(?P<ref>SR-[A-Z0-9]{4}-[A-Z0-9]{4})\b")
REFERENCES = {"SR-AB12-CD34": "agt_alice", "SR-ZZ99-YY88": "agt_bob"}
WALLETS = {"SenderWallet111": "agt_carol"}


def run(memos: list[str], sender: str | None) -> tuple[str | None, str, str | None]:
    result = attribute(
        memos,
        sender,
        pattern=PATTERN,
        customer_for_reference=REFERENCES.get,
        customer_for_wallet=WALLETS.get,
    )
    return result.customer, result.method, result.reference


def test_memo_reference_wins_over_a_linked_wallet() -> None:
    assert run(["top-up SR-AB12-CD34 thanks"], "SenderWallet111") == ("agt_alice", MEMO, "SR-AB12-CD34")


def test_linked_wallet_when_no_reference() -> None:
    assert run(["hello"], "SenderWallet111") == ("agt_carol", LINKED_WALLET, None)


def test_unknown_reference_falls_through_to_the_wallet() -> None:
    assert run(["SR-0000-0000"], "SenderWallet111") == ("agt_carol", LINKED_WALLET, None)


def test_nothing_known_goes_to_suspense() -> None:
    assert run([], None) == (None, SUSPENSE, None)
    assert run(["SR-0000-0000"], "SomeoneElse") == (None, SUSPENSE, None)


def test_two_customers_in_one_memo_go_to_suspense() -> None:
    assert run(["SR-AB12-CD34 SR-ZZ99-YY88"], "SenderWallet111") == (None, SUSPENSE, None)


def test_same_reference_twice_is_one() -> None:
    assert run(["SR-AB12-CD34", "again SR-AB12-CD34"], None) == ("agt_alice", MEMO, "SR-AB12-CD34")


def test_pattern_groups() -> None:
    assert references_in(["x CFP #4115716 y"], re.compile(r"CFP #\d+")) == ["CFP #4115716"]
    assert references_in(["ref:abc ref:def"], re.compile(r"ref:(\w+)")) == ["abc", "def"]
