"""`verify` passes on a ledger built through the API and names what is broken after hand edits in raw SQL.

Each break is done the way a careless operator (or a bug) would: plain SQL on the tables, with
foreign keys or unique constraints out of the way where the database would otherwise refuse.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import Connection, text

from ledger_client import (
    Ledger,
    Problem,
    adjustment_entry,
    card_refund_entry,
    crypto_deposit_entry,
    deposit_key,
)
from ledger_client.verify import verify_ledger
from tests.ledger_data import TREASURY, address, signature, topup, usdc_deposit

AT = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def build(ledger: Ledger) -> dict[str, int]:
    """A small but varied ledger: card, crypto (SOL, OSR), suspense, assignment, adjustment, reversal."""
    ids: dict[str, int] = {}
    ids["topup"] = ledger.post(topup("v1", "agt_alice", 20_000_000)).transaction_id
    ids["refund"] = ledger.post(card_refund_entry("re_v1", "agt_alice", 5_000_000, {})).transaction_id
    sol = deposit_key(signature("v-sol"), TREASURY, "SOL")
    ids["sol"] = ledger.post(
        crypto_deposit_entry(sol, "agt_bob", "SOL", 100_000_000, 14_025_000, 0, 14_025_000, 0, 0, {})
    ).transaction_id
    osr = deposit_key(signature("v-osr"), TREASURY, "OSR")
    ids["osr"] = ledger.post(
        crypto_deposit_entry(
            osr, "agt_bob", "OSR", 10_000_000_000, 50_000, 25_000, 75_000, 7_000_000_000, 3_000_000_000, {}
        )
    ).transaction_id
    hold = usdc_deposit("v-hold", None, 3_000_000, sender=address("v-sender"))
    ids["hold"] = ledger.post(hold).transaction_id
    ids["assign"] = ledger.assign_suspense(hold.key, "agt_carol", actor="ops").transaction_id
    ids["adjust"] = ledger.post(
        adjustment_entry("v-adj", "agt_carol", "USD", -1_000_000, reason="usage", actor="ops", at=AT)
    ).transaction_id
    ids["reversal"] = ledger.reverse(ids["sol"], reason="wrong customer", actor="ops").transaction_id
    return ids


def raw(ledger: Ledger, edit: Callable[[Connection], object]) -> None:
    """Run a hand edit with the referential checks off (SQLite: foreign_keys; PostgreSQL: replica role)."""
    with ledger.engine.connect() as connection:
        if ledger.is_postgresql:
            with connection.begin():
                connection.execute(text("SET LOCAL session_replication_role = replica"))
                edit(connection)
        else:
            driver = connection.connection.driver_connection
            assert driver is not None
            driver.execute("PRAGMA foreign_keys=OFF")  # only outside a transaction
            with connection.begin():
                edit(connection)
            driver.execute("PRAGMA foreign_keys=ON")


def codes(problems: list[Problem]) -> list[str]:
    return sorted(problem.code for problem in problems)


def test_a_ledger_built_through_the_api_verifies(ledger: Ledger) -> None:
    build(ledger)
    assert ledger.verify() == []


def test_an_edited_amount_breaks_the_balance_and_the_content(ledger: Ledger) -> None:
    ids = build(ledger)
    raw(
        ledger,
        lambda c: c.execute(
            text("UPDATE ledger_postings SET amount = amount - 1 WHERE transaction_id = :t AND account = 'agt_alice'"),
            {"t": ids["topup"]},
        ),
    )
    problems = ledger.verify()
    assert codes(problems) == ["content_mismatch", "unbalanced"]
    unbalanced = next(p for p in problems if p.code == "unbalanced")
    # The customer leg went from -20,000,000 to -20,000,001: the transaction sums to -1 in USD.
    assert unbalanced.message == (
        f"transaction {ids['topup']} (stripe:cs_test_v1) does not balance in USD: postings sum to -1"
    )


def test_swapped_legs_that_still_balance_are_caught_by_the_content_hash(ledger: Ledger) -> None:
    ids = build(ledger)

    # Swap the OSR burn (7,000,000,000) and retained (3,000,000,000) amounts: still balanced in OSR,
    # but 30% would now be burned instead of 70%.
    def edit(connection: Connection) -> None:
        connection.execute(
            text(
                "UPDATE ledger_postings SET amount = 3000000000 WHERE transaction_id = :t AND account = 'osr:to-burn'"
            ),
            {"t": ids["osr"]},
        )
        connection.execute(
            text(
                "UPDATE ledger_postings SET amount = 7000000000 WHERE transaction_id = :t AND account = 'osr:retained'"
            ),
            {"t": ids["osr"]},
        )

    raw(ledger, edit)
    [problem] = ledger.verify()
    assert problem.code == "content_mismatch"
    assert problem.message.startswith(f"transaction {ids['osr']} (sol:{signature('v-osr')}:{TREASURY}:OSR)")


def test_a_posting_without_its_transaction_is_named(ledger: Ledger) -> None:
    build(ledger)
    raw(
        ledger,
        lambda c: c.execute(
            text(
                "INSERT INTO ledger_postings (transaction_id, account, currency, amount) "
                "VALUES (999999, 'agt_alice', 'USD', -5000000), (999999, 'stripe:clearing', 'USD', 5000000)"
            )
        ),
    )
    [problem] = ledger.verify()
    assert (problem.code, problem.message) == (
        "orphan_posting",
        "2 posting(s) name transaction 999999, which does not exist",
    )


def test_a_transaction_without_postings_and_an_unknown_account_are_named(ledger: Ledger) -> None:
    ids = build(ledger)

    def edit(connection: Connection) -> None:
        connection.execute(text("DELETE FROM ledger_postings WHERE transaction_id = :t"), {"t": ids["adjust"]})
        connection.execute(text("UPDATE ledger_postings SET account = 'agt_ghost' WHERE account = 'agt_alice'"))

    raw(ledger, edit)
    problems = ledger.verify()
    assert codes(problems) == ["content_mismatch", "content_mismatch", "empty_transaction", "unknown_account"]
    assert any(f"transaction {ids['adjust']} (adjust:v-adj) has no postings" in p.message for p in problems)
    assert any("'agt_ghost', which is not in ledger_accounts" in p.message for p in problems)


def test_a_currency_an_account_may_not_hold_is_named(ledger: Ledger) -> None:
    ids = build(ledger)
    # Both legs of the refund turned into SOL: balanced in SOL, but customers and Stripe hold USD only.
    raw(
        ledger,
        lambda c: c.execute(
            text("UPDATE ledger_postings SET currency = 'SOL' WHERE transaction_id = :t"), {"t": ids["refund"]}
        ),
    )
    problems = ledger.verify()
    assert codes(problems) == ["account_currency", "account_currency", "content_mismatch"]
    messages = " ".join(p.message for p in problems)
    assert "account agt_alice has postings in SOL" in messages
    assert "account stripe:clearing has postings in SOL" in messages


def test_a_key_posted_twice_is_named(ledger: Ledger) -> None:
    ids = build(ledger)

    def edit(connection: Connection) -> None:
        if ledger.is_postgresql:
            connection.execute(
                text("ALTER TABLE ledger_transactions DROP CONSTRAINT uq_ledger_transactions_idempotency_key")
            )
        else:
            # SQLite cannot drop a UNIQUE constraint: copy the table without it (references stay by name).
            connection.exec_driver_sql("PRAGMA legacy_alter_table=ON")
            connection.exec_driver_sql("ALTER TABLE ledger_transactions RENAME TO ledger_transactions_old")
            connection.exec_driver_sql("CREATE TABLE ledger_transactions AS SELECT * FROM ledger_transactions_old")
            connection.exec_driver_sql("DROP TABLE ledger_transactions_old")
        connection.execute(
            text(
                "INSERT INTO ledger_transactions (id, idempotency_key, kind, content_hash, evidence, created_at) "
                "SELECT 500, idempotency_key, kind, content_hash, evidence, created_at FROM ledger_transactions "
                "WHERE id = :t"
            ),
            {"t": ids["topup"]},
        )
        connection.execute(
            text(
                "INSERT INTO ledger_postings (transaction_id, account, currency, amount) "
                "SELECT 500, account, currency, amount FROM ledger_postings WHERE transaction_id = :t"
            ),
            {"t": ids["topup"]},
        )

    raw(ledger, edit)
    [problem] = ledger.verify()
    assert (problem.code, problem.message) == (
        "duplicate_key",
        f"idempotency key 'stripe:cs_test_v1' is posted 2 times (transactions {ids['topup']} … 500)",
    )


def test_suspense_assigned_out_after_its_hold_was_reversed_is_an_error(ledger: Ledger) -> None:
    hold = usdc_deposit("v-reversed", None, 2_000_000, sender=address("v-s2"))
    posted = ledger.post(hold)
    ledger.assign_suspense(hold.key, "agt_dave", actor="ops")
    ledger.reverse(posted.transaction_id, reason="the deposit was fake", actor="ops")
    [problem] = ledger.verify()
    # +2 held, -2 assigned out, -2 taken back by the reversal: suspense at -2.000000.
    assert (problem.code, problem.severity) == ("suspense_negative", "error")
    assert "suspense holds -2.000000 USD" in problem.message


def test_findings_are_bounded_per_check(ledger: Ledger) -> None:
    ledger.post_many([topup(f"b{n}", "agt_many", 1_000_000) for n in range(3)])
    raw(ledger, lambda c: c.execute(text("UPDATE ledger_postings SET amount = amount + 1 WHERE account = 'agt_many'")))
    problems = ledger.read(lambda uow: verify_ledger(uow.connection, max_reported=2))
    unbalanced = [p for p in problems if p.code == "unbalanced"]
    assert len(unbalanced) == 3  # two findings, then the count of the rest
    assert unbalanced[-1].message == "… and 1 more unbalanced findings"
