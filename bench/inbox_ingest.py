"""Webhook inbox ingest under load: signed deliveries with 10 % duplicates against `serve`.

Starts its own console (`manage.py serve --no-worker` on a free port, SQLite in a temporary data
dir), creates an inbox with a signing secret, then runs --senders threads on keep-alive
connections: against /healthz (a bare 200 through the same middleware) for the baseline, before
and after posting signed deliveries to the inbox for --seconds. One delivery in ten re-sends an
event already sent. Afterwards the database is checked: every acknowledged event stored exactly
once, every duplicate counted on its stored copy.

Targets (exit 1 when one is missed): >= 300 deliveries/s, 0 lost, 0 stored twice, 0 "database
is locked", p99 acknowledgement < 250 ms.

    python bench/inbox_ingest.py [--seconds 60] [--senders 24] [--workers 2 --threads 32]
"""

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from local_server import start_serve, stop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_RATE = 300
TARGET_P99_MS = 250
DUPLICATE_SHARE = 0.10
SECRET = "whsec_bench_" + "x" * 32


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    duplicates_sent: int = 0
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: int, seconds: float, event_id: str | None, duplicate: bool) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if event_id and 200 <= status < 300:
                self.acked.add(event_id)
            if duplicate:
                self.duplicates_sent += 1


def start_console(data_dir: str, workers: int, threads: int) -> tuple[subprocess.Popen, int, Path]:
    # The ingest rate is the measure here: the limits a flood must meet are for inbox_flood.py.
    limits = {
        "RIVYA_INBOX_RATE_PER_MINUTE": "1000000",
        "RIVYA_INBOX_MAX_REQUESTS": "1000000",
        "RIVYA_INBOX_MAX_MB": "100000",
    }
    return start_serve(data_dir, workers=workers, threads=threads, env=limits)


def make_inbox() -> str:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rivya_dashboard.settings")
    django.setup()
    from rivya_dashboard.webhooks import inboxes

    inbox = inboxes.do_create_inbox(None, name="Bench", key=None)
    inboxes.do_add_secret(None, inbox, SECRET)
    return inbox.token


def run_senders(
    port: int, senders: int, seconds: float, request: Callable[[random.Random], tuple]
) -> tuple[Tally, float]:
    tally = Tally()
    deadline = time.monotonic() + seconds

    def sender(number: int) -> None:
        rng = random.Random(number)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < deadline:
            method, path, body, headers, event_id, duplicate = request(rng)
            started = time.perf_counter()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except OSError:
                tally.errors += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            tally.add(status, time.perf_counter() - started, event_id, duplicate)
        connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=sender, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally, time.monotonic() - started


def delivery_factory(token: str) -> Callable[[random.Random], tuple]:
    from rivya_dashboard.rivya import signing

    sent: list[str] = []
    lock = threading.Lock()
    counter = iter(range(10**9))

    def next_delivery(rng: random.Random) -> tuple:
        with lock:
            duplicate = bool(sent) and rng.random() < DUPLICATE_SHARE
            event_id = rng.choice(sent) if duplicate else f"evt_bench_{next(counter)}"
            if not duplicate:
                sent.append(event_id)
        payload = {
            "id": event_id,
            "object": "event",
            "type": "generation.succeeded",
            "api_version": "2026-05-11",
            "data": {"id": "task_" + event_id[10:], "status": "succeeded", "result": {}},
            "test": False,
        }
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = signing.sign(SECRET, body, msg_id=event_id, timestamp=int(time.time()))
        headers["Content-Type"] = "application/json"
        return "POST", f"/hooks/{token}/", body, headers, event_id, duplicate

    return next_delivery


def bare_request(rng: random.Random) -> tuple:
    return "GET", "/healthz", None, {}, None, False


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else 0.0


def check_database(token: str, tally: Tally) -> dict[str, int]:
    from django.db.models import Count, Sum

    from rivya_dashboard.webhooks.models import InboxRequest

    rows = InboxRequest.objects.filter(inbox__token=token)
    stored_ids = set(rows.values_list("event_id", flat=True))
    stored_twice = rows.values("event_id").annotate(n=Count("pk")).filter(n__gt=1).count()
    return {
        "rows": rows.count(),
        "lost": len(tally.acked - stored_ids),
        "stored_twice": stored_twice,
        "not_verified": rows.exclude(verdict="verified").count(),
        "duplicates_counted": rows.aggregate(total=Sum("duplicate_count"))["total"] or 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--senders", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rivya-bench-inbox-") as data_dir:
        os.environ["RIVYA_DATA_DIR"] = data_dir
        os.environ.pop("DATABASE_URL", None)
        server, port, log = start_console(data_dir, options.workers, options.threads)
        try:
            token = make_inbox()
            # Half the baseline before the ingest and half after: on a shared machine the load
            # drifts, and the ratio should compare like with like.
            half = max(3.0, options.seconds / 12)
            before, before_elapsed = run_senders(port, options.senders, half, bare_request)
            ingest, elapsed = run_senders(
                port, options.senders, options.seconds, delivery_factory(token)
            )
            bare, after_elapsed = run_senders(port, options.senders, half, bare_request)
            bare.latencies += before.latencies
            for status, count in before.statuses.items():
                bare.statuses[status] = bare.statuses.get(status, 0) + count
            bare_elapsed = before_elapsed + after_elapsed
        finally:
            stop(server)
        found = check_database(token, ingest)
        locked = log.read_text(errors="replace").count("database is locked")
    bare_rate = len(bare.latencies) / bare_elapsed
    rate = len(ingest.latencies) / elapsed
    p50 = statistics.median(ingest.latencies) * 1000 if ingest.latencies else 0
    p99 = percentile(ingest.latencies, 0.99) * 1000
    bare_p99 = percentile(bare.latencies, 0.99) * 1000
    print(
        f"baseline /healthz: {bare_rate:.0f} req/s, p99 {bare_p99:.1f} ms, statuses {bare.statuses}"
    )
    print(
        f"inbox: {len(ingest.latencies)} deliveries in {elapsed:.1f} s with {options.senders} "
        f"senders ({ingest.duplicates_sent} duplicates), statuses {ingest.statuses}, "
        f"connection errors {ingest.errors}"
    )
    print(f"ack latency p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(
        f"database: {found['rows']} rows for {len(ingest.acked)} acknowledged events, "
        f"lost {found['lost']}, stored twice {found['stored_twice']}, "
        f"not verified {found['not_verified']}, duplicates counted {found['duplicates_counted']}, "
        f'"database is locked" {locked}'
    )
    missed = []
    if rate < TARGET_RATE:
        missed.append(f"rate {rate:.0f}/s < {TARGET_RATE}/s")
    if p99 >= TARGET_P99_MS:
        missed.append(f"p99 {p99:.0f} ms >= {TARGET_P99_MS} ms")
    bad_status = sum(n for s, n in ingest.statuses.items() if s != 200)
    for name, value in (
        ("lost", found["lost"]),
        ("stored twice", found["stored_twice"]),
        ("database is locked", locked),
        ("non-200 answers", bad_status),
        ("connection errors", ingest.errors),
    ):
        if value:
            missed.append(f"{name} {value}")
    verdict = "OK" if not missed else "MISSED: " + "; ".join(missed)
    print(
        f"inbox ingest {rate:.0f} deliveries/s = {rate / bare_rate:.2f} x bare 200 "
        f"({bare_rate:.0f}/s), p99 {p99:.0f} ms, lost {found['lost']}, "
        f"stored twice {found['stored_twice']}, locked {locked}: {verdict}"
    )
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
