"""Reconciliation of the ledger against Stripe (issue 7) and against the chain, and the audit (issue 9).

    source = StripeApiSource(api_key=…, api_base=…)           # reconcile.stripe_source (I/O)
    result = reconcile_window(ledger, source, since, until, fix=True, now=now)   # reconcile.job
    window_reconciled(ledger, since, until)                    # reconcile.runs: the daemon's question

Modules: `records` (what Stripe says, as plain records), `currency` (minor units, zero- and
three-decimal currencies), `stripe_source` (the adapter on the official stripe library; its errors
translated in one place), `matcher` (pure classification and the drafts --fix posts), `job`
(orchestration), `runs` (the run table), `report` (JSON, CSV, table), `errors` (the exception tree,
drawn there), `testing` (a loopback Stripe API for tests and benchmarks). docs/RECONCILE.md describes
the whole.

Issue 9 (docs/PROOF.md): `chain` (chain-vs-ledger reconciliation: pure comparison, the job and its
ports), `audit` (every credit re-derived from its evidence), `proof_runs` (their run tables,
`last_chain_run`, `last_audit`), `proof_report` (JSON and tables). The indexer implements their ports
(`indexer.proof`), because this package imports `ledger_client` and `pricing`, never `indexer`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reconcile.errors import (
    InvalidWindowError,
    LedgerChangedError,
    ReconcileError,
    ReconcileInputError,
    StripeApiError,
    StripeAuthenticationError,
    StripeRateLimited,
    StripeRejected,
    StripeReplyError,
    StripeUnavailable,
)
from reconcile.matcher import CLASSES, Finding, Totals

if TYPE_CHECKING:
    from reconcile.audit import run_audit
    from reconcile.chain import run_chain_reconciliation
    from reconcile.job import RunResult, reconcile_window
    from reconcile.proof_runs import last_audit, last_chain_run
    from reconcile.runs import RunRecord, last_run, recent_runs, window_reconciled
    from reconcile.stripe_source import StripeApiSource, StripeSource

# The stripe library and SQLAlchemy load only when the job runs.
_LAZY = {
    "run_chain_reconciliation": "chain",
    "run_audit": "audit",
    "last_chain_run": "proof_runs",
    "last_audit": "proof_runs",
    "RunResult": "job",
    "reconcile_window": "job",
    "RunRecord": "runs",
    "last_run": "runs",
    "recent_runs": "runs",
    "window_reconciled": "runs",
    "StripeApiSource": "stripe_source",
    "StripeSource": "stripe_source",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'reconcile' has no attribute {name!r}")
    import importlib  # noqa: PLC0415

    return getattr(importlib.import_module(f"reconcile.{module}"), name)


__all__ = [
    "CLASSES",
    "Finding",
    "InvalidWindowError",
    "LedgerChangedError",
    "ReconcileError",
    "ReconcileInputError",
    "RunRecord",
    "RunResult",
    "StripeApiError",
    "StripeApiSource",
    "StripeAuthenticationError",
    "StripeRateLimited",
    "StripeRejected",
    "StripeReplyError",
    "StripeSource",
    "StripeUnavailable",
    "Totals",
    "last_audit",
    "last_chain_run",
    "last_run",
    "recent_runs",
    "reconcile_window",
    "run_audit",
    "run_chain_reconciliation",
    "window_reconciled",
]
