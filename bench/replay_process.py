"""A replay node in its own process for benchmarks: the demo's recorded mainnet deposits cloned with
fresh signatures. `python -m bench.replay_process COUNT` prints {"rpc_url": …, "ws_url": …} once ready
and serves until stdin closes or SIGTERM."""

from __future__ import annotations

import signal
import sys
import threading

import orjson

from indexer.demo import WALLETS, demo_chain
from indexer.replay import ReplayServer


def main() -> None:
    count = int(sys.argv[1])
    chain = demo_chain()
    wallets = set(WALLETS)
    templates = [t for t in chain.transactions() if wallets & set(t.keys)]
    recorded = len(chain.transactions())
    chain.synthesise(max(count - recorded, 0), templates=templates, per_slot=4, seed=f"bench-{count}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with ReplayServer(chain) as server:
        sys.stdout.write(orjson.dumps({"rpc_url": server.rpc_url, "ws_url": server.ws_url}).decode() + "\n")
        sys.stdout.flush()
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        stop.wait()


if __name__ == "__main__":
    main()
