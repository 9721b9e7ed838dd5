"""Running `treasury run` against the loopback replay node in tests: start, wait, look, stop."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from indexer import store
from ledger_client import Ledger
from ledger_client.schema import transactions_table
from tests.backfill_support import TREASURY


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def daemon_environment(env: dict[str, str], **extra: str) -> tuple[dict[str, str], int]:
    port = free_port()
    result = {
        **env,
        "TREASURY_HEALTH_ADDR": f"127.0.0.1:{port}",
        "TREASURY_POLL_INTERVAL_S": "1",
        "TREASURY_FINALIZE_INTERVAL_S": "1",
        "TREASURY_WS_SILENCE_S": "30",
        "TREASURY_SHUTDOWN_GRACE_S": "15",
        # The synthesised clones land after the bundled price series: a year of age prices them.
        "TREASURY_PRICE_MAX_AGE_S": "31536000",
        **extra,
    }
    return result, port


class DaemonProcess:
    """The daemon in a subprocess; its logs go to a file (a pipe nobody reads would fill and block it)."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.env = env
        self.port = port
        self.log = tempfile.NamedTemporaryFile(prefix="treasury-daemon-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen([TREASURY, "run"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self._final_log: str | None = None

    @property
    def stderr(self) -> str:
        if self._final_log is not None:
            return self._final_log
        return Path(self.log.name).read_text(errors="replace")

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample on /metrics (0 when absent)."""
        _, text = self.get("/metrics")
        wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
        for line in text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.split()[-1])
        return 0.0

    def healthz(self) -> tuple[int, dict[str, Any]]:
        status, body = self.get("/healthz")
        return status, json.loads(body) if body.startswith("{") else {}

    def wait_healthy(self, timeout_s: float = 60) -> None:
        wait_for(self._healthy, timeout_s, "the daemon to be healthy")

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the daemon exited {self.process.returncode}: {self.stderr[-3000:]}")
        try:
            return self.healthz()[0] == 200
        except (urllib.error.URLError, ConnectionError, OSError):
            return False

    def terminate(self, timeout_s: float = 40) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)

    def close(self) -> None:
        self._final_log = self.stderr
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


@contextlib.contextmanager
def running(env: dict[str, str], port: int) -> Iterator[DaemonProcess]:
    daemon = DaemonProcess(env, port)
    try:
        daemon.wait_healthy()
        yield daemon
    finally:
        daemon.kill()
        daemon.close()


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def deposit_status(database_url: str, signature: str) -> list[tuple[str, str | None]]:
    """(status, credits as micro-USD text) of each deposit of a signature."""
    with Ledger.open(database_url, quiet=True) as ledger:
        rows = ledger.read(lambda uow: store.deposits_of_signatures(uow.connection, [signature]))
    return [(row.status, None if row.credits_micros is None else str(row.credits_micros)) for row in rows]


def credit_count(database_url: str, key_prefix: str) -> int:
    """How many ledger transactions carry a key starting with key_prefix (exactly-once checks)."""
    with Ledger.open(database_url, quiet=True) as ledger:
        return int(
            ledger.read(
                lambda uow: uow.connection.execute(
                    select(func.count())
                    .select_from(transactions_table)
                    .where(transactions_table.c.idempotency_key.startswith(key_prefix))
                ).scalar_one()
            )
        )
