"""Faults on one host (issue 18 §2): the embedded default as it runs, `serve` with its worker,
in both passes of CI (its own SQLite, or its own PostgreSQL database).

- The task worker killed mid-poll: serve restarts it, and the job finishes once.
- The database unavailable for a few seconds: /healthz answers 503, pages say so, a form sent
  meanwhile saves nothing, and the console recovers by itself: the task worker waits the outage
  out (one line when it begins, one when it ends) instead of exiting, and runs the next job.

How the database goes away:
- SQLite: this test holds the file's write lock (BEGIN IMMEDIATE). In WAL mode nothing another
  process does can stop readers: every open connection keeps a shared lock on the file, so
  `PRAGMA locking_mode=EXCLUSIVE` is refused at once while the console runs. Pages that only
  read go on; whatever writes waits RIVYA_SQLITE_TIMEOUT (1 s here) and gets the 503 page.
- PostgreSQL: the machine's server is shared, so it is never stopped. The console reaches it
  through a loopback proxy in this test; the outage drops every proxied connection and refuses
  new ones, then accepts again. That is how a PostgreSQL stop and start looks from the console:
  its open connections die and new ones fail until the server is back.
"""

import contextlib
import os
import re
import signal
import socket
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.scale.one_host import POSTGRES, OneHost, one_host
from tests.served import (
    make_member,
    post_confirmed,
    shared_key,
    sign_in,
    submit_generation,
    wait_for,
)

OUTAGE_SECONDS = 5.0


class DatabaseProxy:
    """A loopback TCP proxy to the PostgreSQL server that can play the server going away."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _address = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                refuse(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                refuse(client)
                continue
            server.settimeout(None)
            with self.lock:
                self.open |= {client, server}
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with self.lock:
            self.open -= {source, target}
        drop(source, target)

    def stop(self) -> None:
        """Drop every connection and refuse new ones, as a stopped server does."""
        self.up.clear()
        with self.lock:
            dropped, self.open = self.open, set()
        drop(*dropped)

    def start(self) -> None:
        self.up.set()

    def close(self) -> None:
        self.listener.close()
        self.stop()


def drop(*ends: socket.socket) -> None:
    """Shut down first: it wakes the pump blocked reading the socket, which closing would not."""
    for end in ends:
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)
        end.close()


def refuse(end: socket.socket) -> None:
    """Close with a reset, as a port nothing listens on answers."""
    end.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    end.close()


@pytest.fixture(scope="module")
def proxy() -> Iterator[DatabaseProxy | None]:
    if not POSTGRES:
        yield None
        return
    server = urlsplit(POSTGRES)
    proxy = DatabaseProxy((server.hostname or "127.0.0.1", server.port or 5432))
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def console(tmp_path_factory, proxy) -> Iterator[OneHost]:
    with one_host(
        tmp_path_factory.mktemp("one-host"),
        database_port=proxy.port if proxy else None,
        # Housekeeping (which resumes a poll a killed worker dropped) every 3 s, not every 60.
        RIVYA_POLL_SPEED="20",
        # Whatever writes during the SQLite lock gives up after 1 s instead of 20.
        RIVYA_SQLITE_TIMEOUT="1",
    ) as host:
        yield host


def test_the_worker_killed_mid_poll_is_restarted_and_the_job_finishes_once(console):
    make_member(console, "gus", "owner")
    key_id = shared_key(console, '{"latency": 4000}')
    owner = sign_in(console.url(), "gus")
    started = time.monotonic()
    submit_generation(owner, console.url(), key_id, "A harbour at night")
    running = (
        "SELECT id FROM django_tasks_database_dbtaskresult "
        "WHERE status = 'RUNNING' AND task_path LIKE '%%poll_generation'"
    )
    wait_for(lambda: console.query(running), 60, "a poll starting")
    victim, starts = console.worker_pid(), console.worker_starts()
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    shared_key(console, "{}")

    console.served.wait_for(r"worker started \(pid (\d+)\)", count=starts + 1, timeout=30)
    status = "SELECT status FROM console_generation"
    wait_for(lambda: console.query(status) == [("succeeded",)], 120, "the job finishing")
    finished_in = time.monotonic() - killed_at
    charges = console.query(
        "SELECT credits_final FROM vault_ledgerentry WHERE operation = 'generations.create'"
    )
    outputs = console.query("SELECT cached_name FROM console_output WHERE cached_name <> ''")
    print(
        f"one host ({console.vendor}): worker {victim} killed mid-poll, restarted by serve; "
        f"the job finished {finished_in:.1f} s later ({time.monotonic() - started:.1f} s "
        f"in all) with {len(charges)} charge(s) and {len(outputs)} cached output(s)"
    )
    assert victim != console.worker_pid()
    assert len(charges) == 1 and charges[0][0] is not None
    assert len(outputs) == len({name for (name,) in outputs}) >= 1
    media = Path(console.env["RIVYA_DATA_DIR"]) / "media" / "outputs"
    assert sorted(path.name for path in media.iterdir()) == sorted(name for (name,) in outputs)


def pages_at_once(member: requests.Session, url: str, count: int = 16) -> list[int]:
    """The status of `count` requests for a page sent at once, each on a connection of its own."""

    def fetch(_number: int) -> int:
        with requests.Session() as browser:
            browser.cookies.update(member.cookies)
            return browser.get(url, timeout=30).status_code

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(fetch, range(count)))


def first_task_started_after(console: OneHost, moment: datetime) -> datetime:
    """When the worker started its first task after `moment` (stored in UTC; naive on SQLite)."""
    rows = console.query(
        "SELECT started_at FROM django_tasks_database_dbtaskresult WHERE started_at IS NOT NULL"
    )
    starts = [
        value if isinstance(value, datetime) else datetime.fromisoformat(value).replace(tzinfo=UTC)
        for (value,) in rows
    ]
    return min(start for start in starts if start >= moment)


@contextlib.contextmanager
def database_unavailable(console: OneHost, proxy: DatabaseProxy | None) -> Iterator[None]:
    """The database gone for OUTAGE_SECONDS, or as long as the body takes if that is longer."""
    started = time.monotonic()
    if proxy:
        proxy.stop()
    else:
        locker = sqlite3.connect(console.database, timeout=30, isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")
    try:
        yield
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - started)))
    finally:
        if proxy:
            proxy.start()
        else:
            locker.rollback()
            locker.close()


def test_the_console_rides_out_a_database_outage(console, proxy):
    make_member(console, "dora", "owner")
    key_id = shared_key(console, "{}")
    owner = sign_in(console.url(), "dora")
    # Several web threads each keep a connection, which the outage cuts.
    assert set(pages_at_once(owner, console.url("/inbox/"))) == {200}
    inboxes = "SELECT count(*) FROM webhooks_inbox"
    (before,) = console.query(inboxes)[0]
    starts = console.worker_starts()
    logged_before = len(console.served.output().splitlines())

    outage_began = time.monotonic()
    with database_unavailable(console, proxy):
        health = requests.get(console.url("/healthz"), timeout=30)
        page = owner.get(console.url("/inbox/"), timeout=30)
        fragment = owner.get(console.url("/inbox/"), headers={"HX-Request": "true"}, timeout=30)
        sent = post_confirmed(owner, console.url(), "/inbox/new/", {"name": "During the outage"})
        (during,) = console.query(inboxes)[0]
    outage = time.monotonic() - outage_began
    came_back = datetime.now(UTC)

    health_after = requests.get(console.url("/healthz"), timeout=30)
    pages_after = pages_at_once(owner, console.url("/inbox/"))
    page_after = owner.get(console.url("/inbox/"), timeout=30)
    sent_after = post_confirmed(owner, console.url(), "/inbox/new/", {"name": "After the outage"})
    (after,) = console.query(inboxes)[0]
    submitted = time.monotonic()
    submit_generation(owner, console.url(), key_id, "A lighthouse after the storm")
    status = "SELECT status FROM console_generation WHERE prompt = %s"
    done = [("succeeded",)]
    wait_for(lambda: console.query(status, "A lighthouse after the storm") == done, 90, "a job")
    restarts = console.worker_starts() - starts
    took_a_task = (first_task_started_after(console, came_back) - came_back).total_seconds()
    worker_lines = [
        line
        for line in console.served.output().splitlines()[logged_before:]
        if re.search(r"rivya\.worker Worker \S+: the database", line)
    ]
    print(
        f"one host ({console.vendor}): database unavailable {outage:.1f} s; during it /healthz "
        f"{health.status_code} in {health.elapsed.total_seconds():.2f} s, the inbox page "
        f"{page.status_code}, htmx {fragment.status_code}, a form {sent.status_code} in "
        f"{sent.elapsed.total_seconds():.2f} s; the first requests after: /healthz "
        f"{health_after.status_code}, the page {page_after.status_code} (and at once "
        f"{sorted(pages_after)}), the form "
        f"{sent_after.status_code}; a job submitted after finished in "
        f"{time.monotonic() - submitted:.1f} s; worker restarts by serve: {restarts}; the "
        f"worker's first task after the outage started {took_a_task:.1f} s after the database "
        "came back; it logged:\n" + "\n".join(worker_lines)
    )
    assert restarts == 0
    began, ended = worker_lines
    assert "the database is not answering (" in began and "answers again after" in ended
    assert health.status_code == 503 and health.json()["status"] == "unavailable"
    assert sent.status_code == 503
    assert "The database is not answering" in sent.text and "Nothing was saved" in sent.text
    assert during == before
    if console.vendor == "postgresql":
        assert page.status_code == 503 and "<h1>The database is not answering</h1>" in page.text
        assert fragment.status_code == 503 and fragment.text.startswith('<div class="card"')
    else:
        # WAL: a page that only reads does not wait for the writer's lock.
        assert page.status_code == fragment.status_code == 200
    assert health_after.status_code == 200 and set(pages_after) == {200}
    assert page_after.status_code == 200 and "During the outage" not in page_after.text
    assert sent_after.status_code == 200 and "Inbox created" in sent_after.text
    assert after == before + 1
