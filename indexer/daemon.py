"""`treasury run`: the long-running worker (issue 6). One asyncio process, bounded tasks, one stop event.

    websocket (logsSubscribe per watched address, confirmed)  -- hints --> observe: recorded as pending
    poller (from the persisted cursors, finalized; on start, on every reconnect, every poll interval)
    finalizer (confirmed -> finalized: fetched again and credited; never final -> dropped)
    scheduler (APScheduler 3, jobs only on the daemon holding the lease): token-account discovery and
        mint check, pending_price retries, Stripe reconciliation of the previous day, nightly verify
    health (/healthz, /metrics on TREASURY_HEALTH_ADDR)

Websocket notifications are hints only: completeness comes from the poller, which walks every watched
address from its cursor (indexer/scan.py) and is the same code as `treasury backfill` — so on an empty
ledger the first poll is the backfill. `logsSubscribe` with `mentions` is used rather than
`accountSubscribe`: a logs notification carries the signature, which is what the pipeline fetches,
and it also fires for transactions that touch a token account without changing the wallet; account
notifications say only that data changed. A slot subscription is the heartbeat: a socket with no
message for TREASURY_WS_SILENCE_S is dead and replaced (reconnect with exponential backoff and
jitter, then resubscribe, then poll).

Several daemons may share one PostgreSQL ledger: crediting is exactly-once by the ledger's keys and
the deposits' conditional transitions; the scheduled jobs run only on the holder of the `scheduler`
lease (a row renewed every few seconds; a dead holder's lease expires).

SIGTERM or SIGINT sets the stop event: loops stop taking work, what is in flight finishes (a
database transaction commits or rolls back as a whole), and the process exits 0 within
TREASURY_SHUTDOWN_GRACE_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import random
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final

import orjson
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from indexer import store
from indexer.config import Settings
from indexer.pipeline import Pipeline, PipelineError, RunSummary
from indexer.rpc import RpcError, SolanaRpc
from indexer.rpc.pubsub import SolanaPubsub
from indexer.scan import ScanError
from ledger_client import Ledger
from ledger_client.errors import LedgerError
from ledger_client.ledger import UnitOfWork
from pricing import PriceOracle

SCHEDULER_LEASE: Final = "scheduler"
LEASE_TTL_S: Final = 30.0
LEASE_RENEW_S: Final = 5.0
HINT_QUEUE_SIZE: Final = 10_000  # a full queue drops hints: the poller finds those transactions anyway
HINT_BATCH: Final = 100
FINALIZE_BATCH: Final = 256  # getSignatureStatuses takes at most 256
RECONNECT_INITIAL_S: Final = 0.5
RECONNECT_MAX_S: Final = 30.0
HEALTH_REQUEST_TIMEOUT_S: Final = 5.0
RPC_FRESH_S: Final = 120.0  # /healthz: the RPC answered within this long

_log = structlog.get_logger("indexer.daemon")


class Metrics:
    """Prometheus metrics, every name prefixed `treasury_` (a registry of its own: no process globals)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.deposits_seen = Counter("treasury_deposits_seen", "Deposits recorded", ["status"], registry=r)
        self.deposits_credited = Counter("treasury_deposits_credited", "Deposits credited", ["asset"], registry=r)
        self.deposits_ignored = Counter("treasury_deposits_ignored", "Deposits ignored", ["reason"], registry=r)
        self.deposits_dropped = Counter("treasury_deposits_dropped", "Deposits never finalized", registry=r)
        self.credited_usd_micros = Counter(
            "treasury_credited_usd_micros", "Credits posted, micro-USD, by asset", ["asset"], registry=r
        )
        self.lag_slots = Gauge("treasury_lag_slots", "Finalized tip minus the slot polled to", ["address"], registry=r)
        self.lag_seconds = Gauge(
            "treasury_lag_seconds", "Seconds since the address was last polled", ["address"], registry=r
        )
        self.rpc_errors = Counter(
            "treasury_rpc_errors", "RPC failures (retried or final) by kind", ["kind"], registry=r
        )
        self.ws_reconnects = Counter("treasury_websocket_reconnects", "Websocket reconnections", registry=r)
        self.ws_connected = Gauge("treasury_websocket_connected", "1 while the websocket is subscribed", registry=r)
        self.leader = Gauge("treasury_scheduler_leader", "1 on the daemon running the scheduled jobs", registry=r)
        self.tip_slot = Gauge("treasury_finalized_slot", "The finalized slot last seen", registry=r)

    def event(self, name: str, **fields: Any) -> None:
        """The pipeline's on_event hook."""
        if name == "deposit_seen":
            self.deposits_seen.labels(fields.get("status", "")).inc()
        elif name == "deposit_ignored":
            self.deposits_ignored.labels(fields.get("reason", "")).inc()
        elif name == "deposit_credited":
            asset = str(fields.get("asset", ""))
            self.deposits_credited.labels(asset).inc()
            self.credited_usd_micros.labels(asset).inc(int(fields.get("credits_micros", 0)))
        elif name == "deposit_dropped":
            self.deposits_dropped.inc()

    def rpc_error(self, error: RpcError) -> None:
        self.rpc_errors.labels(type(error).__name__).inc()


@dataclasses.dataclass
class Health:
    """What /healthz judges: set by the loops as they work."""

    ws_connected: bool = False
    ws_last_message: float = 0.0
    rpc_last_ok: float = 0.0
    db_last_ok: float = 0.0
    tip_slot: int | None = None
    polled_slot: int | None = None  # the finalized tip at the start of the last complete poll
    polled_at: float = 0.0


class Daemon:
    def __init__(
        self,
        *,
        settings: Settings,
        ledger: Ledger,
        rpc: SolanaRpc,
        oracle: PriceOracle,
        metrics: Metrics | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.rpc = rpc
        self.metrics = metrics or Metrics()
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.pipeline = Pipeline(
            settings=settings, ledger=ledger, rpc=rpc, oracle=oracle, clock=self.clock, on_event=self.metrics.event
        )
        self.holder = f"daemon-{uuid.uuid4().hex[:12]}"
        self.stop = asyncio.Event()
        self.poll_now = asyncio.Event()
        self.hints: asyncio.Queue[str] = asyncio.Queue(maxsize=HINT_QUEUE_SIZE)
        self.finals: asyncio.Queue[str] = asyncio.Queue(maxsize=HINT_QUEUE_SIZE)
        self.health = Health()
        self.is_leader = False
        self.summary = RunSummary()
        self._server: asyncio.AbstractServer | None = None
        self.health_port: int | None = None

    # --- life cycle ---

    async def run(self) -> None:
        """Run until the stop event is set; then let the loops finish their unit of work (bounded by the
        grace time) and return."""
        await self._start_health_server()
        if not await self._start_up():
            await self._close_health_server()
            self.pipeline.close()
            return
        scheduler = self._scheduler()
        scheduler.start()
        loops = [
            asyncio.create_task(self._guard("lease", self._lease_loop), name="lease"),
            asyncio.create_task(self._guard("poller", self._poll_loop), name="poller"),
            asyncio.create_task(self._guard("websocket", self._websocket_loop), name="websocket"),
            asyncio.create_task(self._guard("hints", self._hint_loop), name="hints"),
            asyncio.create_task(self._guard("finals", self._finals_loop), name="finals"),
            asyncio.create_task(self._guard("finalizer", self._finalize_loop), name="finalizer"),
        ]
        _log.info("daemon_started", holder=self.holder, addresses=len(await self.pipeline.addresses()))
        try:
            await self.stop.wait()
        finally:
            _log.info("daemon_stopping", holder=self.holder, grace_s=self.settings.shutdown_grace_s)
            scheduler.shutdown(wait=False)
            _, pending = await asyncio.wait(loops, timeout=self.settings.shutdown_grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            with contextlib.suppress(LedgerError):
                await asyncio.to_thread(self._release_lease)
            await self._close_health_server()
            self.pipeline.close()
            _log.info("daemon_stopped", holder=self.holder, unfinished=len(pending))

    def request_stop(self) -> None:
        self.stop.set()

    async def _start_up(self) -> bool:
        """Mint check and token-account discovery, retried while the node is unreachable (a mint table
        the chain contradicts is raised: the daemon must not run on it). False when stopped first."""
        for attempt in range(1_000_000):
            if self.stop.is_set():
                return False
            try:
                await self.pipeline.check_mints()
                await self.pipeline.discover()
                self._rpc_ok(None)
                return True
            except RpcError as exc:
                _log.warning("start_up_retry", error=f"{type(exc).__name__}: {exc}", attempt=attempt)
                await self._sleep(min(RECONNECT_MAX_S, RECONNECT_INITIAL_S * 2 ** min(attempt, 6)))
        return False

    async def _close_health_server(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _guard(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """A loop that fails unexpectedly is logged and restarted after a pause (bounded), not lost."""
        for attempt in range(1_000_000):
            if self.stop.is_set():
                return
            try:
                await loop()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.error("daemon_loop_failed", loop=name, error=f"{type(exc).__name__}: {exc}", attempt=attempt)
                await self._sleep(min(RECONNECT_MAX_S, RECONNECT_INITIAL_S * 2 ** min(attempt, 6)))

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the daemon stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)

    # --- the poller: completeness from the cursors ---

    async def _poll_loop(self) -> None:
        while not self.stop.is_set():
            await self.poll_once()
            self.poll_now.clear()
            with contextlib.suppress(TimeoutError):
                waiters = [asyncio.ensure_future(self.stop.wait()), asyncio.ensure_future(self.poll_now.wait())]
                try:
                    await asyncio.wait(
                        waiters, timeout=self.settings.poll_interval_s, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    for waiter in waiters:
                        waiter.cancel()

    async def poll_once(self) -> None:
        """One forward poll of every watched address from its cursor, then credit what is final."""
        tip = await self.rpc.get_slot("finalized")
        self._rpc_ok(tip)
        started = self.clock()
        await self._run(
            lambda uow: store.set_state(uow.connection, "tip", {"slot": tip, "at": started.isoformat()}, started)
        )
        complete = True
        for address in await self.pipeline.addresses():
            if self.stop.is_set():
                return
            try:
                await self.pipeline.scan_address(address, self.summary, commitment="finalized")
            except (PipelineError, RpcError, ScanError) as exc:
                complete = False
                _log.warning("poll_failed", address=address, error=str(exc))
                continue
            await self._run(self._polled_writer(address, tip, started))
            self.metrics.lag_slots.labels(address).set(0)
            self.metrics.lag_seconds.labels(address).set(0)
        await self.pipeline.settle_all(self.summary)
        if complete:
            self.health.polled_slot = tip
            self.health.polled_at = time.monotonic()

    @staticmethod
    def _polled_writer(address: str, tip: int, at: dt.datetime) -> Callable[[UnitOfWork], None]:
        def write(uow: UnitOfWork) -> None:
            store.set_state(uow.connection, f"polled:{address}", {"slot": tip, "at": at.isoformat()}, at)

        return write

    # --- websocket hints ---

    async def _websocket_loop(self) -> None:
        attempt = 0
        while not self.stop.is_set():
            try:
                async with SolanaPubsub(
                    self.settings.websocket_url, silence_limit_s=self.settings.ws_silence_s
                ) as pubsub:
                    await pubsub.slot_subscribe()  # the heartbeat: a notification every ~400 ms
                    finalized: set[int] = set()
                    for address in await self.pipeline.addresses():
                        await pubsub.logs_subscribe(address, commitment="confirmed")
                        finalized.add(await pubsub.logs_subscribe(address, commitment="finalized"))
                    self.health.ws_connected = True
                    self.health.ws_last_message = time.monotonic()
                    self.metrics.ws_connected.set(1)
                    attempt = 0
                    self.poll_now.set()  # whatever happened while disconnected: the poller finds it
                    await self._read_notifications(pubsub, finalized)
            except RpcError as exc:
                self.metrics.rpc_error(exc)
                _log.warning("websocket_lost", error=f"{type(exc).__name__}: {exc}", attempt=attempt)
            finally:
                self.health.ws_connected = False
                self.metrics.ws_connected.set(0)
            if self.stop.is_set():
                return
            self.metrics.ws_reconnects.inc()
            delay_s = min(RECONNECT_MAX_S, RECONNECT_INITIAL_S * 2 ** min(attempt, 10)) * random.uniform(0.5, 1.5)  # noqa: S311 - jitter
            attempt += 1
            await self._sleep(delay_s)

    async def _read_notifications(self, pubsub: SolanaPubsub, finalized: set[int]) -> None:
        """Logs at confirmed are hints to record a deposit as pending; logs at finalized say it may be
        credited now (the periodic finalizer is the safety net for notifications that never come)."""
        while not self.stop.is_set():
            stopping = asyncio.ensure_future(self.stop.wait())
            reading = asyncio.ensure_future(pubsub.next_notification())
            try:
                done, _ = await asyncio.wait([stopping, reading], return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                if not reading.done():
                    reading.cancel()
            if reading not in done:
                return
            notification = reading.result()
            self.health.ws_last_message = time.monotonic()
            if notification.method == "slotNotification":
                continue
            if notification.method == "logsNotification":
                value = notification.value if isinstance(notification.value, dict) else {}
                signature = value.get("signature")
                if isinstance(signature, str):
                    queue = self.finals if notification.subscription in finalized else self.hints
                    with contextlib.suppress(asyncio.QueueFull):
                        queue.put_nowait(signature)

    async def _hint_loop(self) -> None:
        """Hinted signatures, recorded at confirmed in batches (a failure leaves them to the poller)."""
        await self._drain(self.hints, lambda batch: self.pipeline.observe(batch, self.summary), "hints_failed")

    async def _finals_loop(self) -> None:
        """Signatures notified final: fetched at finalized and credited at once."""
        await self._drain(
            self.finals, lambda batch: self.pipeline.finalize(batch, self.summary, live=True), "finals_failed"
        )

    async def _drain(
        self, queue: asyncio.Queue[str], handle: Callable[[list[str]], Awaitable[int]], failure: str
    ) -> None:
        while not self.stop.is_set():
            getter = asyncio.ensure_future(queue.get())
            stopping = asyncio.ensure_future(self.stop.wait())
            try:
                done, _ = await asyncio.wait([getter, stopping], return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                if not getter.done():
                    getter.cancel()
            if getter not in done:
                return
            batch = [getter.result()]
            while len(batch) < HINT_BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await handle(batch)
            except (PipelineError, RpcError, LedgerError) as exc:
                _log.warning(failure, signatures=len(batch), error=str(exc))

    # --- finality ---

    async def _finalize_loop(self) -> None:
        while not self.stop.is_set():
            await self.finalize_once()
            await self._sleep(self.settings.finalize_interval_s)

    async def finalize_once(self) -> None:
        """Confirmed transactions: final ones are fetched again and credited; ones that stayed unknown
        for TREASURY_DROP_AFTER_SLOTS slots never will be: dropped."""
        waiting = await self._read(lambda uow: store.confirmed_signatures(uow.connection, limit=FINALIZE_BATCH))
        if not waiting:
            return
        statuses = await self.rpc.get_signature_statuses([signature for signature, _ in waiting])
        tip = await self.rpc.get_slot("confirmed")
        self._rpc_ok(None)
        final, dropped = [], []
        for (signature, slot), status in zip(waiting, statuses, strict=True):
            if status is not None and status.confirmation_status == "finalized":
                final.append(signature)
            elif status is None and tip - slot > self.settings.drop_after_slots:
                dropped.append(signature)
        if final:
            await self.pipeline.finalize(final, self.summary, live=True)
        if dropped:
            count = await self.pipeline.drop(
                dropped, reason=f"not finalized within {self.settings.drop_after_slots} slots"
            )
            _log.warning("transactions_dropped", signatures=dropped, deposits=count)

    # --- the scheduler, on the lease holder only ---

    async def _lease_loop(self) -> None:
        while not self.stop.is_set():
            try:
                self.is_leader = await self._run(self._lease_taker(self.clock()))
            except LedgerError as exc:
                self.is_leader = False
                _log.warning("lease_failed", error=str(exc))
            self.metrics.leader.set(1 if self.is_leader else 0)
            await self._sleep(LEASE_RENEW_S)

    def _lease_taker(self, now: dt.datetime) -> Callable[[UnitOfWork], bool]:
        def take(uow: UnitOfWork) -> bool:
            return store.acquire_lease(uow.connection, SCHEDULER_LEASE, self.holder, now=now, ttl_s=LEASE_TTL_S)

        return take

    def _release_lease(self) -> None:
        self.ledger.run(lambda uow: store.release_lease(uow.connection, SCHEDULER_LEASE, self.holder))

    def _scheduler(self) -> AsyncIOScheduler:
        scheduler = AsyncIOScheduler(timezone="UTC")
        jobs: list[tuple[str, Callable[[], Awaitable[dict[str, Any]]], Any, int]] = [
            ("discovery", self._job_discovery, IntervalTrigger(minutes=10), 300),
            ("pending_price", self._job_pending_price, IntervalTrigger(minutes=5), 120),
            ("suspense_sync", self._job_suspense_sync, IntervalTrigger(minutes=1), 60),
            ("reconcile_stripe", self._job_reconcile_stripe, CronTrigger(hour=0, minute=30, timezone="UTC"), 6 * 3600),
            ("reconcile_chain", self._job_reconcile_chain, CronTrigger(hour=1, minute=0, timezone="UTC"), 6 * 3600),
            ("audit", self._job_audit, CronTrigger(hour=1, minute=45, timezone="UTC"), 6 * 3600),
            ("ledger_verify", self._job_verify, CronTrigger(hour=2, minute=15, timezone="UTC"), 6 * 3600),
        ]
        for name, job, trigger, grace_s in jobs:
            scheduler.add_job(
                self._scheduled,
                trigger,
                args=[name, job],
                id=name,
                misfire_grace_time=grace_s,  # a late run still runs within this, once
                coalesce=True,  # missed runs collapse into one
                max_instances=1,  # never two of the same job at once
            )
        return scheduler

    async def _scheduled(self, name: str, job: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        if not self.is_leader or self.stop.is_set():
            return
        await self.run_job(name, job)

    async def run_job(self, name: str, job: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """Run a job and record its outcome (treasury status shows the last one of each)."""
        started = self.clock()
        try:
            detail = await job()
            ok = bool(detail.pop("ok", True))
        except Exception as exc:
            detail, ok = {"error": f"{type(exc).__name__}: {exc}"}, False
            _log.error("job_failed", job=name, error=detail["error"])
        finished = self.clock()
        await self._run(
            lambda uow: store.record_job_run(
                uow.connection, name, self.holder, started_at=started, finished_at=finished, ok=ok, detail=detail
            )
        )
        _log.info("job_finished", job=name, ok=ok, **{k: v for k, v in detail.items() if isinstance(v, int | str)})
        return {"ok": ok, **detail}

    async def _job_discovery(self) -> dict[str, Any]:
        await self.pipeline.check_mints()
        added = await self.pipeline.discover()
        if added:
            self.poll_now.set()
        return {"new_accounts": added}

    async def _job_pending_price(self) -> dict[str, Any]:
        summary = RunSummary()
        await self.pipeline.settle_all(summary, live=False)
        return {"credited": summary.credited + summary.held_in_suspense, "still_pending": len(summary.pending_price)}

    async def _job_suspense_sync(self) -> dict[str, Any]:
        now = self.clock()
        return {"assigned": await self._run(lambda uow: store.sync_suspense(uow, now))}

    async def _job_verify(self) -> dict[str, Any]:
        problems = await asyncio.to_thread(self.ledger.verify)
        errors = [p for p in problems if p.severity != "flag"]
        return {
            "ok": not errors,
            "problems": [f"{p.code}: {p.message}" for p in problems][:50],
            "errors": len(errors),
            "flags": len(problems) - len(errors),
        }

    def _previous_day(self) -> tuple[dt.datetime, dt.datetime]:
        until = self.clock().replace(hour=0, minute=0, second=0, microsecond=0)
        return until - dt.timedelta(days=1), until

    async def _job_reconcile_chain(self) -> dict[str, Any]:
        """The previous UTC day: recorded inflows minus outflows against the chain (issue 9)."""
        from indexer.proof import reconcile_chain  # noqa: PLC0415

        since, until = self._previous_day()
        result = await reconcile_chain(self.ledger, self.rpc, since, until, now=self.clock(), settings=self.settings)
        return {
            "ok": result.clean,
            "window": str(since.date()),
            "differences": result.differences,
            "warnings": result.warnings,
        }

    async def _job_audit(self) -> dict[str, Any]:
        """Every credit of the previous UTC day re-derived from its evidence (issue 9)."""
        from indexer.proof import audit  # noqa: PLC0415

        since, until = self._previous_day()
        result = await asyncio.to_thread(audit, self.ledger, since, until, settings=self.settings, now=self.clock())
        return {
            "ok": result.clean,
            "window": str(since.date()),
            "credits": result.credits,
            "differences": result.differences_total,
        }

    async def _job_reconcile_stripe(self) -> dict[str, Any]:
        """The previous UTC day's card top-ups against the ledger, with --fix; a no-op until a Stripe
        key is configured, and once per window."""
        key = self.settings.stripe_api_key
        if key is None:
            return {"skipped": "no Stripe key configured"}
        from reconcile.job import reconcile_window  # noqa: PLC0415 - Stripe loads only when configured
        from reconcile.runs import window_reconciled  # noqa: PLC0415
        from reconcile.stripe_source import StripeApiSource  # noqa: PLC0415

        now = self.clock()
        since, until = self._previous_day()
        if await asyncio.to_thread(window_reconciled, self.ledger, since, until):
            return {"skipped": f"{since.date()} already reconciled"}
        source = StripeApiSource(api_key=key.reveal(), api_base=self.settings.stripe_api_base)
        result = await asyncio.to_thread(reconcile_window, self.ledger, source, since, until, fix=True, now=now)
        return {"ok": True, "window": str(since.date()), "all_matched": result.all_matched, "fixed": result.fixed}

    # --- helpers ---

    def _rpc_ok(self, tip: int | None) -> None:
        self.health.rpc_last_ok = time.monotonic()
        if tip is not None:
            self.health.tip_slot = tip
            self.metrics.tip_slot.set(tip)

    async def _run(self, fn: Callable[[UnitOfWork], Any]) -> Any:
        result = await self.pipeline._run(fn)  # the pipeline's database thread serialises all writes
        self.health.db_last_ok = time.monotonic()
        return result

    async def _read(self, fn: Callable[[UnitOfWork], Any]) -> Any:
        result = await self.pipeline._read(fn)
        self.health.db_last_ok = time.monotonic()
        return result

    # --- /healthz and /metrics ---

    async def _start_health_server(self) -> None:
        host, port = self.settings.health_addr
        self._server = await asyncio.start_server(self._serve_http, host, port)
        sockets = self._server.sockets or ()
        self.health_port = sockets[0].getsockname()[1] if sockets else port
        _log.info("health_listening", host=host, port=self.health_port)

    def healthz(self) -> tuple[bool, dict[str, Any]]:
        now = time.monotonic()
        lag_slots = (
            self.health.tip_slot - self.health.polled_slot
            if self.health.tip_slot is not None and self.health.polled_slot is not None
            else None
        )
        checks = {
            "database": now - self.health.db_last_ok < RPC_FRESH_S,
            "rpc": now - self.health.rpc_last_ok < RPC_FRESH_S,
            "websocket": self.health.ws_connected and now - self.health.ws_last_message < self.settings.ws_silence_s,
            "lag": lag_slots is not None and lag_slots <= self.settings.max_lag_slots,
        }
        return all(checks.values()), {"checks": checks, "lag_slots": lag_slots, "leader": self.is_leader}

    async def _serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=HEALTH_REQUEST_TIMEOUT_S)
            parts = request.decode("latin-1").split()
            path = parts[1] if len(parts) >= 2 else ""
            for _ in range(100):  # drain the headers (bounded)
                line = await asyncio.wait_for(reader.readline(), timeout=HEALTH_REQUEST_TIMEOUT_S)
                if line in (b"\r\n", b"\n", b""):
                    break
            if path == "/healthz":
                if now_ok := await self._database_alive():
                    self.health.db_last_ok = time.monotonic()
                ok, body = self.healthz()
                ok = ok and now_ok
                status, payload, kind = (200 if ok else 503), orjson.dumps({"ok": ok, **body}), "application/json"
            elif path == "/metrics":
                status, payload, kind = 200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST
            else:
                status, payload, kind = 404, b"not found\n", "text/plain"
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {len(payload)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _database_alive(self) -> bool:
        try:
            await asyncio.wait_for(
                asyncio.to_thread(self.ledger.read, lambda uow: store.states(uow.connection, "tip")), 2.0
            )
        except (TimeoutError, LedgerError):
            return False
        return True


def install_signal_handlers(daemon: Daemon) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, daemon.request_stop)
