"""Inbox flood: anyone with an inbox URL posts 250 kB bodies as fast as they can for 60 s.

Starts its own console (`manage.py serve --no-worker` on a free port, SQLite in a temporary
data dir) with small inbox limits, creates an inbox without a secret (it stores what anyone
sends, the case the limits are for), then runs --senders threads posting --body-kb bodies on
keep-alive connections for --seconds. Every second it reads the database on its own: the rows
and bytes the inbox holds, and the size of the SQLite files. The baseline is what the senders
posted: the ratio shows how little of it was kept.

Targets (exit 1 when one is missed): the inbox never holds more than its request and byte
limits, the database files stay under twice the byte limit plus 16 MB, every answer is 200 or
429 (each with Retry-After, and some once more than twice the rate per minute was sent), 0
connection errors.

    python bench/inbox_flood.py [--seconds 60] [--senders 8] [--body-kb 250]
"""

import argparse
import http.client
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from local_server import start_serve, stop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MAX_REQUESTS = 200
MAX_MB = 20
RATE_PER_MINUTE = 240
SQLITE_SLACK_MB = 16
MB = 1024 * 1024


@dataclass
class Tally:
    statuses: dict[int, int] = field(default_factory=dict)
    without_retry_after: int = 0
    errors: int = 0
    sent_bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: int, retry_after: str | None, size: int) -> None:
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.sent_bytes += size
            if status == 429 and not (retry_after or "").isdigit():
                self.without_retry_after += 1


@dataclass
class Watch:
    most_rows: int = 0
    most_bytes: int = 0
    largest_files: int = 0
    samples: int = 0


def start_console(data_dir: str) -> tuple[subprocess.Popen, int, Path]:
    limits = {
        "RIVYA_INBOX_MAX_REQUESTS": str(MAX_REQUESTS),
        "RIVYA_INBOX_MAX_MB": str(MAX_MB),
        "RIVYA_INBOX_RATE_PER_MINUTE": str(RATE_PER_MINUTE),
    }
    return start_serve(data_dir, workers=2, threads=16, env=limits)


def make_inbox() -> tuple[str, int]:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rivya_dashboard.settings")
    django.setup()
    from rivya_dashboard.webhooks import inboxes

    inbox = inboxes.do_create_inbox(None, name="Flooded", key=None)
    return inbox.token, inbox.pk


def watch(data_dir: Path, inbox_pk: int, stop_at: float, seen: Watch) -> None:
    database = data_dir / "rivya.sqlite3"
    reader = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    query = (
        "SELECT count(*), coalesce(sum(length(body) + length(CAST(body_text AS BLOB))"
        " + length(CAST(headers AS BLOB))), 0) FROM webhooks_inboxrequest WHERE inbox_id = ?"
    )
    while time.monotonic() < stop_at:
        rows, size = reader.execute(query, (inbox_pk,)).fetchone()
        files = sum(p.stat().st_size for p in data_dir.glob("rivya.sqlite3*") if p.exists())
        seen.most_rows = max(seen.most_rows, rows)
        seen.most_bytes = max(seen.most_bytes, size)
        seen.largest_files = max(seen.largest_files, files)
        seen.samples += 1
        time.sleep(1)
    reader.close()


def flood(port: int, token: str, senders: int, seconds: float, body: bytes) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + seconds
    headers = {"Content-Type": "application/json"}

    def sender() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < deadline:
            try:
                connection.request("POST", f"/hooks/{token}/", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
            except OSError:
                tally.errors += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            tally.add(response.status, response.getheader("Retry-After"), len(body))
            if response.status == 429:
                # Refused before its body was read, so the server closes the connection: a
                # sender opens a new one, as a webhook sender retrying later would.
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.close()

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--body-kb", type=int, default=250)
    options = parser.parse_args()
    # Valid JSON to an inbox without a secret: accepted and stored whole, the costly case.
    body = b'{"pad": "' + b"A" * (options.body_kb * 1000 - 11) + b'"}'
    with tempfile.TemporaryDirectory(prefix="rivya-bench-flood-") as data_dir:
        os.environ["RIVYA_DATA_DIR"] = data_dir
        os.environ.pop("DATABASE_URL", None)
        server, port, log = start_console(data_dir)
        seen = Watch()
        try:
            token, inbox_pk = make_inbox()
            watcher = threading.Thread(
                target=watch,
                args=(Path(data_dir), inbox_pk, time.monotonic() + options.seconds + 2, seen),
            )
            watcher.start()
            started = time.monotonic()
            tally = flood(port, token, options.senders, options.seconds, body)
            elapsed = time.monotonic() - started
            watcher.join()
        finally:
            stop(server)
        locked = log.read_text(errors="replace").count("database is locked")
    answered = sum(tally.statuses.values())
    limit_bytes = MAX_MB * MB
    file_target = 2 * limit_bytes + SQLITE_SLACK_MB * MB
    kept_share = seen.most_bytes / tally.sent_bytes if tally.sent_bytes else 0.0
    print(
        f"flood: {answered} posts of {options.body_kb} kB in {elapsed:.1f} s from "
        f"{options.senders} senders ({answered / elapsed:.0f}/s, {tally.sent_bytes / MB:.0f} MB "
        f"sent), statuses {tally.statuses}, connection errors {tally.errors}"
    )
    print(
        f"limits: {MAX_REQUESTS} requests, {MAX_MB} MB, {RATE_PER_MINUTE} a minute; "
        f"{seen.samples} samples of the database"
    )
    print(
        f"inbox held at most {seen.most_rows} requests and {seen.most_bytes / MB:.1f} MB; "
        f"SQLite files at most {seen.largest_files / MB:.1f} MB "
        f'(target < {file_target / MB:.0f} MB); "database is locked" {locked}'
    )
    missed = []
    if seen.most_rows > MAX_REQUESTS:
        missed.append(f"rows {seen.most_rows} > {MAX_REQUESTS}")
    if seen.most_bytes > limit_bytes:
        missed.append(f"bytes {seen.most_bytes} > {limit_bytes}")
    if seen.largest_files > file_target:
        missed.append(f"SQLite files {seen.largest_files / MB:.0f} MB > {file_target / MB:.0f} MB")
    unexpected = sum(n for status, n in tally.statuses.items() if status not in (200, 429))
    for name, value in (
        ("answers other than 200/429", unexpected),
        ("429 without Retry-After", tally.without_retry_after),
        ("connection errors", tally.errors),
        ("database is locked", locked),
        # A window is a clock minute: more than twice its rate in the run overfills one of them.
        ("no 429 at all", 0 if tally.statuses.get(429) or answered <= 2 * RATE_PER_MINUTE else 1),
    ):
        if value:
            missed.append(f"{name} {value}")
    verdict = "OK" if not missed else "MISSED: " + "; ".join(missed)
    print(
        f"inbox flood kept {seen.most_bytes / MB:.1f} MB of {tally.sent_bytes / MB:.0f} MB sent "
        f"= {kept_share:.4f} x the baseline, at most {seen.most_rows}/{MAX_REQUESTS} requests, "
        f"{seen.largest_files / MB:.0f} MB on disk: {verdict}"
    )
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
