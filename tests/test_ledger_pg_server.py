"""The test suite's PostgreSQL fallback works: a throwaway server starts on another port even though
127.0.0.1:5432 answers, from the system's binaries and from pgserver's bundled ones, and a ledger
runs on it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger_client import Ledger
from tests import pg
from tests.ledger_data import topup

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _exercise(server: pg.PgServer) -> None:
    url = server.create_database(pg.unique_name("ledger_fallback"))
    with Ledger.open(url) as ledger:
        assert ledger.ensure_schema() is True
        assert ledger.post(topup("fallback", "agt_fallback", 9_000_000)).created
        assert ledger.balance("agt_fallback") == 9_000_000


@pytest.mark.parametrize("source", ["preferred", "pgserver"])
def test_a_throwaway_server_starts_on_another_port(source: str) -> None:
    # "preferred": what the suite itself would use (pg_config, /usr/lib/postgresql, else pgserver).
    bindir = pg.find_bindirs()[0] if source == "preferred" else pg.pgserver_bindir()
    assert (bindir / "initdb").is_file()  # pgserver is a pinned dev dependency: always there
    port = pg.free_port()
    assert port != pg.DEFAULT_PORT
    server = pg.start_server(port=port, bindir=bindir)
    base = server.base_dir
    assert base is not None
    try:
        assert server.owned
        assert pg.answers(pg.DEFAULT_HOST, port)
        _exercise(server)
    finally:
        server.stop()
    assert not pg.answers(pg.DEFAULT_HOST, port)
    assert not Path(base).exists()
