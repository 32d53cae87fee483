"""One console host as the embedded default runs: `manage.py serve` with its task worker, on a
free port, for the scale tests that disturb a single host.

In the SQLite pass it keeps its database in its own data directory. In the PostgreSQL pass
(DATABASE_URL names a PostgreSQL server) it makes a database of its own on that server and drops
it after, as the two-host cluster does; the console may reach the server through another port
(a test's proxy), while the test itself reads the database directly.
"""

import base64
import contextlib
import os
import re
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.conftest import subprocess_env
from tests.served import (
    ManagedConsole,
    Served,
    database_url,
    free_port,
    is_postgres,
    own_postgres_database,
)

DATABASE_URL = os.environ.get("DATABASE_URL", "")
# The PostgreSQL server of this pass of CI, or "" in the SQLite pass.
POSTGRES = DATABASE_URL if is_postgres(DATABASE_URL) else ""
# Starting migrates a fresh database: slower on PostgreSQL than on SQLite.
START_TIMEOUT = 120.0


@dataclass
class OneHost(ManagedConsole):
    served: Served
    # The database as the test reads it: a PostgreSQL URL, or the SQLite file.
    database: str

    @property
    def vendor(self) -> str:
        return "postgresql" if is_postgres(self.database) else "sqlite"

    def url(self, path: str = "") -> str:
        return self.served.url(path)

    def manage_env(self) -> dict[str, str]:
        """`manage.py` reaches the database directly, not by the console's route to it."""
        direct = {"DATABASE_URL": self.database} if self.vendor == "postgresql" else {}
        return {**self.env, **direct}

    def query(self, sql: str, *params: object) -> list[tuple]:
        """Rows of `sql` (placeholders written %s), read directly from the console's database."""
        if self.vendor == "postgresql":
            with psycopg.connect(self.database) as connection:
                return connection.execute(sql, params).fetchall()
        with contextlib.closing(sqlite3.connect(self.database, timeout=30)) as connection:
            return connection.execute(sql.replace("%s", "?"), params).fetchall()

    def worker_pid(self) -> int:
        """The task worker serve runs now (the last one it started)."""
        return int(re.findall(r"worker started \(pid (\d+)\)", self.served.output())[-1])

    def worker_starts(self) -> int:
        return self.served.output().count("worker started (pid")


@contextlib.contextmanager
def one_host(data_dir: Path, *, database_port: int | None = None, **env: str) -> Iterator[OneHost]:
    """A served console with these environment variables on top of the defaults below;
    `database_port` is where it reaches PostgreSQL (the server's own port if None)."""
    with contextlib.ExitStack() as stack:
        database = str(data_dir / "rivya.sqlite3")
        database_env = {}
        if POSTGRES:
            name = stack.enter_context(own_postgres_database(POSTGRES, "rivya_one_host_"))
            database = database_url(POSTGRES, name)
            database_env["DATABASE_URL"] = database_url(POSTGRES, name, port=database_port)
        port = free_port()
        full_env = subprocess_env(
            RIVYA_PUBLIC_URL=f"http://127.0.0.1:{port}",
            RIVYA_DATA_DIR=str(data_dir),
            SECRET_KEY=secrets.token_urlsafe(48),
            RIVYA_KEYRING="k0a1b2c3d:" + base64.urlsafe_b64encode(os.urandom(32)).decode(),
            RIVYA_MFA_REQUIRED="0",
            RIVYA_DEBUG="0",
            PYTHONUNBUFFERED="1",
            **database_env,
            **env,
        )
        served = Served(port, data_dir, full_env)
        stack.callback(served.stop)
        served.wait_healthy(timeout=START_TIMEOUT)
        yield OneHost(full_env, served, database)
