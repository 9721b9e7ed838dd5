"""The loopback replay server: HTTP JSON-RPC and websocket pubsub, each on its own 127.0.0.1 port,
answering from a `ReplayChain` as a Solana node would, with scripted faults and request counters.

`ReplayServer` runs both servers on an asyncio loop in a background thread, so tests, the demo and
benchmarks control it from ordinary code:

    with ReplayServer(chain) as server:
        rpc = SolanaRpc(server.rpc_url, ...)
        server.faults.rate_limit(times=2, retry_after_s=1)
        chain.add(reply, commitment="confirmed")   # pushed to websocket subscribers
        server.count("getTransaction")

The HTTP side is a minimal HTTP/1.1 server on asyncio streams (keep-alive, Content-Length bodies):
no framework, so serving a batch costs little more than copying prepared bytes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import http
import threading
from types import TracebackType
from typing import Final, Self

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from indexer.replay.chain import Event, ReplayChain
from indexer.replay.faults import Faults
from indexer.replay.methods import Methods, RpcFault, error_reply
from indexer.replay.pubsub import PubsubHub

HOST: Final = "127.0.0.1"
MAX_BODY_BYTES: Final = 16 * 1024 * 1024
MAX_HEADER_BYTES: Final = 64 * 1024
START_TIMEOUT_S: Final = 10.0
STOP_TIMEOUT_S: Final = 10.0
_REASONS: Final = {status.value: status.phrase for status in http.HTTPStatus}


class ReplayServer:
    """Serve `chain` on loopback: `rpc_url` (HTTP JSON-RPC) and `ws_url` (websocket pubsub)."""

    def __init__(self, chain: ReplayChain, *, port: int = 0, ws_port: int = 0, host: str = HOST) -> None:
        self.chain = chain
        self.faults = Faults()
        self.counts: collections.Counter[str] = collections.Counter()
        self.http_requests = 0
        self._host = host
        self._port = port
        self._ws_port = ws_port
        self._methods = Methods(chain, self.faults, self.counts)
        self._hub = PubsubHub(chain, self.faults, self.counts)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self.port = 0
        self.ws_port = 0

    # --- life cycle ---

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("the replay server is already running")
        self._thread = threading.Thread(target=self._run, name="replay-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError("the replay server did not start in time")
        if self._failure is not None:
            self._thread.join(STOP_TIMEOUT_S)
            self._thread = None
            raise RuntimeError(f"the replay server could not start: {self._failure}") from self._failure
        return self

    def stop(self) -> None:
        thread = self._thread
        if thread is None:
            return
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stop.set)
        thread.join(STOP_TIMEOUT_S)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def rpc_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self._host}:{self.ws_port}"

    # --- counters ---

    def count(self, method: str) -> int:
        """Calls of a JSON-RPC method (each batch item counts), or `ws:<method>` for websocket traffic."""
        return self.counts[method]

    def reset_counts(self) -> None:
        self.counts.clear()
        self.http_requests = 0

    @property
    def ws_connections_total(self) -> int:
        return self._hub.connections_total

    @property
    def ws_connections_open(self) -> int:
        return len(self._hub.sessions)

    # --- the loop thread ---

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start(); a thread must not die silently
            self._failure = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        http_server = await asyncio.start_server(
            self._serve_http, self._host, self._port, limit=MAX_HEADER_BYTES, backlog=512
        )
        ws_server: Server = await serve(
            self._hub.handle,
            self._host,
            self._ws_port,
            process_request=self._ws_handshake,
            compression=None,
            max_size=1024 * 1024,
        )
        self.port = next(iter(http_server.sockets)).getsockname()[1]
        self.ws_port = next(iter(ws_server.sockets)).getsockname()[1]
        self.faults.attach_websocket_closer(self._close_websockets)
        self.chain.add_listener(self._on_chain_event)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            self.chain.remove_listener(self._on_chain_event)
            self.faults.attach_websocket_closer(None)
            self._hub.close_abruptly()
            ws_server.close()
            http_server.close()
            await ws_server.wait_closed()
            await http_server.wait_closed()

    def _on_chain_event(self, event: Event) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._hub.on_event(event)
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(self._hub.on_event, event)

    def _close_websockets(self) -> None:
        loop = self._loop
        if loop is None:
            raise RuntimeError("the replay server is not running")
        done = threading.Event()

        def close() -> None:
            self._hub.close_abruptly()
            done.set()

        loop.call_soon_threadsafe(close)
        done.wait(STOP_TIMEOUT_S)

    def _ws_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.faults.ws_refusing():
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "refusing connections\n")
        return None

    async def _serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for _ in range(1_000_000):  # requests on one keep-alive connection
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, _, header_block = head.partition(b"\r\n")
                parts = request_line.split(b" ")
                headers = _headers(header_block)
                keep_alive = headers.get(b"connection", b"").lower() != b"close"
                if len(parts) != 3 or parts[0] != b"POST":
                    await _write(writer, 405, b"only POST\n", (("Content-Type", "text/plain"),), keep_alive=False)
                    return
                length_text = headers.get(b"content-length")
                if length_text is None or not length_text.isdigit() or int(length_text) > MAX_BODY_BYTES:
                    await _write(
                        writer, 411, b"Content-Length required\n", (("Content-Type", "text/plain"),), keep_alive=False
                    )
                    return
                body = await reader.readexactly(int(length_text))
                self.http_requests += 1
                status, extra, reply = await self._answer(body)
                await _write(writer, status, reply, extra, keep_alive=keep_alive)
                if not keep_alive:
                    return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        except asyncio.CancelledError:
            # The server is stopping while a (slow) reply waits: end this connection quietly; the
            # task is the top of its connection, nothing above it waits for the cancellation.
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _answer(self, body: bytes) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
        request = self._methods.parse(body)
        if isinstance(request, RpcFault):
            return 200, (("Content-Type", "application/json"),), error_reply(None, request)
        methods = [item.method for item in request] if isinstance(request, list) else [request.method]
        for method in methods:
            self.counts[method] += 1  # counted on arrival: refused and late calls are attempts too
        action = self.faults.http_action(methods)
        if action.delay_s:
            await asyncio.sleep(action.delay_s)
        if action.status:
            return action.status, action.headers, action.body
        return 200, (("Content-Type", "application/json"),), self._methods.answer(request)


def _headers(block: bytes) -> dict[bytes, bytes]:
    headers: dict[bytes, bytes] = {}
    for line in block.split(b"\r\n"):
        name, separator, value = line.partition(b":")
        if separator:
            headers[name.strip().lower()] = value.strip()
    return headers


async def _write(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    headers: tuple[tuple[str, str], ...],
    *,
    keep_alive: bool,
) -> None:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if not keep_alive:
        lines.append("Connection: close")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
