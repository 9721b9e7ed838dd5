"""`treasury run` (the daemon, indexer/daemon.py) and `treasury status` (its state, from the database).

`status` reads only the database, so it works while daemons run, on SQLite too (WAL): lag per watched
address (the finalized tip the daemon last saw minus the tip its last complete poll of the address
covered), deposits waiting by status, the last Stripe reconciliation, the last chain reconciliation
and audit, the last `ledger verify` and the other scheduled jobs, and which daemon holds the
scheduler lease.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import Sequence
from typing import Any

import orjson

from indexer.app import build_oracle
from indexer.cli import EXIT_OK, CommandError, UsageError
from indexer.commands.ledger import ledger_errors, open_ledger
from indexer.config import Settings
from indexer.pipeline import MintMismatchError, PipelineError
from indexer.rpc import RpcError


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], parents: Sequence[argparse.ArgumentParser]
) -> None:
    run_command = subparsers.add_parser(
        "run",
        parents=parents,
        help="the daemon: watch the treasury live and credit deposits as they finalize",
        description="Run the worker: websocket hints, a poller from the persisted cursors (on an empty ledger "
        "it first catches up as backfill would), finality, crediting, scheduled jobs, /healthz and /metrics on "
        "TREASURY_HEALTH_ADDR. SIGTERM or SIGINT stops it cleanly.",
    )
    run_command.set_defaults(handler=run)
    status = subparsers.add_parser(
        "status",
        parents=parents,
        help="lag, waiting deposits, last reconciliation and last verify, from the database",
        description="What the daemons have done, read from the database: lag per watched address, deposits "
        "waiting (pending, pending_price, suspense), the last Stripe reconciliation, the last ledger verify "
        "and the other scheduled jobs, and which daemon runs them.",
    )
    status.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    status.set_defaults(handler=run_status)


def run(_args: argparse.Namespace, settings: Settings) -> int:
    from indexer.daemon import Daemon, Metrics, install_signal_handlers  # noqa: PLC0415
    from indexer.rpc import SolanaRpc  # noqa: PLC0415

    with open_ledger(settings) as ledger, ledger_errors(settings):

        async def main() -> None:
            metrics = Metrics()
            async with SolanaRpc(settings.rpc_url, on_error=metrics.rpc_error) as rpc:
                oracle = build_oracle(settings)
                try:
                    daemon = Daemon(settings=settings, ledger=ledger, rpc=rpc, oracle=oracle, metrics=metrics)
                    install_signal_handlers(daemon)
                    await daemon.run()
                finally:
                    await oracle.aclose()

        try:
            asyncio.run(main())
        except MintMismatchError as exc:
            raise UsageError(f"run: the asset table does not match the chain: {exc}") from None
        except OSError as exc:
            raise CommandError(
                f"run: cannot serve health on {settings.health_addr[0]}:{settings.health_addr[1]}: {exc.strerror}"
            ) from None
        except (PipelineError, RpcError) as exc:
            raise CommandError(f"run: {exc}") from None
    return EXIT_OK


def status_record(settings: Settings) -> dict[str, Any]:
    from indexer import store  # noqa: PLC0415
    from indexer.proof import proof_status  # noqa: PLC0415
    from reconcile.runs import last_run  # noqa: PLC0415

    with open_ledger(settings) as ledger, ledger_errors(settings):
        now = dt.datetime.now(dt.UTC)

        def read(uow: Any) -> dict[str, Any]:
            connection = uow.connection
            return {
                "states": store.states(connection),
                "heads": store.heads(connection),
                "watched": store.watched(connection),
                "counts": store.status_counts(connection),
                "jobs": store.last_job_runs(connection),
                "lease": store.lease_holder(connection, "scheduler", now=now),
            }

        found = ledger.read(read)
        stripe = last_run(ledger)
        proof = proof_status(ledger)
    tip = found["states"].get("tip", {})
    addresses = list(settings.wallets) + [a.address for a in found["watched"] if a.address not in settings.wallets]
    lag = []
    for address in addresses:
        polled = found["states"].get(f"polled:{address}")
        head = found["heads"].get(address)
        lag.append(
            {
                "address": address,
                "head_slot": head.slot if head else None,
                "polled_slot": polled.get("slot") if polled else None,
                "polled_at": polled.get("at") if polled else None,
                "lag_slots": tip["slot"] - polled["slot"] if polled and "slot" in tip else None,
            }
        )
    jobs = {
        name: {
            "finished_at": run["finished_at"].isoformat(),
            "ok": run["ok"],
            "detail": run["detail"],
        }
        for name, run in found["jobs"].items()
    }
    lease = found["lease"]
    return {
        "tip_slot": tip.get("slot"),
        "tip_seen_at": tip.get("at"),
        "addresses": lag,
        "deposits": {status: found["counts"].get(status, 0) for status in store.STATUSES},
        "last_stripe_reconciliation": None
        if stripe is None
        else {
            "since": stripe.since.isoformat(),
            "until": stripe.until.isoformat(),
            "finished_at": stripe.finished_at.isoformat(),
            "fix": stripe.fix,
            "all_matched": stripe.all_matched,
            "counts": {name: count for name, count in stripe.counts.items() if count},
            "fixed": stripe.fixed,
        },
        "last_chain_reconciliation": proof["chain"],
        "last_audit": proof["audit"],
        "last_verify": jobs.get("ledger_verify"),
        "jobs": jobs,
        "scheduler": {"holder": lease[0], "expires_at": lease[1].isoformat()} if lease else None,
    }


def run_status(args: argparse.Namespace, settings: Settings) -> int:
    record = status_record(settings)
    if args.format == "json":
        sys.stdout.buffer.write(orjson.dumps(record, default=str) + b"\n")
        return EXIT_OK
    print(f"finalized tip last seen: {record['tip_slot'] or '-'} at {record['tip_seen_at'] or '-'}")
    for item in record["addresses"]:
        lag = item["lag_slots"]
        print(
            f"  {item['address']}: polled to slot {item['polled_slot'] or '-'} at {item['polled_at'] or 'never'}"
            f", lag {lag if lag is not None else '-'} slots"
        )
    counts = record["deposits"]
    print("deposits: " + ", ".join(f"{status} {counts[status]}" for status in counts))
    stripe = record["last_stripe_reconciliation"]
    print(
        "last Stripe reconciliation: "
        + (
            "never"
            if stripe is None
            else f"{stripe['since']} .. {stripe['until']}, all matched: {stripe['all_matched']}"
        )
    )
    chain = record["last_chain_reconciliation"]
    print(
        "last chain reconciliation: "
        + ("never" if not chain else f"{chain['since']} .. {chain['until']}, differences: {chain['differences']}")
    )
    audited = record["last_audit"]
    print(
        "last audit: "
        + ("never" if not audited else f"{audited['since']} .. {audited['until']}, clean: {audited.get('clean')}")
    )
    verify = record["last_verify"]
    print("last ledger verify: " + ("never" if verify is None else f"{verify['finished_at']}, ok: {verify['ok']}"))
    for name, job in sorted(record["jobs"].items()):
        if name != "ledger_verify":
            print(f"job {name}: {job['finished_at']}, ok: {job['ok']}")
    scheduler = record["scheduler"]
    print("scheduler: " + ("no daemon holds it" if scheduler is None else f"held by {scheduler['holder']}"))
    return EXIT_OK
