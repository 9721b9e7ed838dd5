"""Alembic migrations of the shared ledger database: one linear chain for every package's tables.

Run them with `Ledger.upgrade()` / `treasury db upgrade`. docs/LEDGER.md says how to add a revision.
"""
