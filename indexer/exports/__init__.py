"""Finance exports (issue 8): deposits and the ledger journal, streamed from one read snapshot, and the
HTML report built from the same rows.

- `rows`: the deposits export's columns and rows (pure: a stored deposit -> an export row) and the
  snapshot query that streams them.
- `formats`: writers for csv, jsonl, xlsx and parquet, each streaming into a temporary file that
  replaces the target only when complete.
- `journal`: the ledger's transactions and postings as csv, jsonl or Beancount.
- `report`: totals, daily series and the self-contained HTML page.
"""

from __future__ import annotations

from indexer.exports.rows import DEPOSIT_COLUMNS, Column, ExportError, deposit_rows, snapshot

__all__ = ["DEPOSIT_COLUMNS", "Column", "ExportError", "deposit_rows", "snapshot"]
