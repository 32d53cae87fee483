"""Usage page and CSV export with 100,000 ledger rows.

Runs in-process on a temporary data dir (its own SQLite database, or --database-url), signed in
through Django's test client, no server needed:

1. server time of the usage page for a 30-day range (every row in range, the worst case), an
   htmx request for it filtered by member, and a drill-down into one day, median and p95 over
   --requests, each against the same page on a nearly empty database (one row per member)
   measured first in the same run;
2. the full CSV export of that range streamed to nowhere: wall time, rows, and the peak Python
   allocation while streaming (tracemalloc), which must stay far below the size of the file.

Exits 1 when the page p95 is 200 ms or more, or the export's peak allocation reaches a tenth of
the file size (a sign that it loaded the rows at once).

    python bench/usage.py [--rows 100000] [--requests 40] [--database-url postgres://…]
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PAGE_TARGET_MS = 200.0
MEMBERS = ["alice", "bob", "carol", "dan", "erin", "frank", "grace", "heidi"]
KEYS = ["Production", "Staging", "Sandbox"]
MODELS = [f"model-{n}" for n in range(12)]
OPERATIONS = ["generations.create", "generations.get", "credits.get", "chat.stream", "files.create"]


def setup_django(data_dir: str, database_url: str | None) -> None:
    os.environ["RIVYA_DATA_DIR"] = data_dir
    os.environ["RIVYA_MFA_REQUIRED"] = "0"
    os.environ.pop("DATABASE_URL", None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rivya_dashboard.settings")
    import django
    from django.core.management import call_command

    django.setup()
    from django.conf import settings

    # No collectstatic in a temporary data dir: serve the source files' names.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    if database_url:
        call_command("flush", "--noinput", verbosity=0)
    call_command("migrate", verbosity=0)


def seed(rows: int, spread: bool = True) -> None:
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from rivya_dashboard.vault.models import LedgerEntry

    random.seed(7)
    now = timezone.now()
    batch = []
    for n in range(rows):
        operation = random.choice(OPERATIONS)
        status = random.choices([200, 402, 500, None], weights=[90, 4, 3, 3])[0]
        charged = operation in ("generations.create", "chat.stream")
        batch.append(
            LedgerEntry(
                at=now - timedelta(seconds=random.randrange(29 * 86400)),
                member_name=random.choice(MEMBERS) if spread else MEMBERS[n],
                key_label=random.choice(KEYS),
                operation=operation,
                model=random.choice(MODELS) if charged else "",
                http_status=status,
                request_id=f"req_{n:024d}",
                credits_reserved=Decimal(random.randint(1, 20)) if charged else None,
                credits_final=Decimal(random.randint(0, 20)) if charged and status else None,
                latency_ms=random.randint(20, 900),
            )
        )
        if len(batch) == 5000:
            LedgerEntry.objects.bulk_create(batch)
            batch = []
    LedgerEntry.objects.bulk_create(batch)


def signed_in_client():
    from django.test import Client

    from rivya_dashboard.accounts.models import Role, User

    owner = User.objects.filter(username="bench-owner").first() or User.objects.create_user(
        "bench-owner", role=Role.OWNER
    )
    client = Client(HTTP_HOST="localhost")
    client.force_login(owner)
    return client


def timed_ms(
    client, path: str, params: dict, requests: int, htmx: bool = False
) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds per request. The process's CPU time includes SQLite's work
    (it runs in this process), so on a shared, busy machine it shows the cost of the page
    apart from the time spent waiting for a core."""
    headers = {"HX-Request": "true"} if htmx else {}
    client.get(path, params, headers=headers)  # warm the caches and the template loader
    wall, cpu = [], []
    for _ in range(requests):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(path, params, headers=headers)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        assert response.status_code == 200, response.content.decode()[-3000:]
    return wall, cpu


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def pages(requests: int) -> dict[str, tuple[tuple[float, float], tuple[float, float]]]:
    from datetime import timedelta

    from django.utils import timezone

    today = timezone.now().date()
    start = (today - timedelta(days=29)).isoformat()
    day = (today - timedelta(days=3)).isoformat() + "T00:00"
    cases = {
        "page": ({"date_from": start, "date_to": today.isoformat()}, False),
        "htmx, one member": ({"date_from": start, "member": "alice"}, True),
        "drill-down, one day": ({"date_from": start, "bucket": day}, False),
    }
    client = signed_in_client()
    found = {}
    for name, (params, htmx) in cases.items():
        wall, cpu = timed_ms(client, "/usage/", params, requests, htmx)
        found[name] = (summary(wall), summary(cpu))
    return found


def export() -> tuple[float, int, int, int]:
    client = signed_in_client()
    tracemalloc.start()
    started = time.perf_counter()
    response = client.get("/usage/export.csv")
    size = lines = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        lines += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, lines - 1, size, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        setup_django(data_dir, args.database_url)
        # The baseline needs one row per member, or the member filter would be refused.
        seed(len(MEMBERS), spread=False)
        empty = pages(args.requests)
        started = time.perf_counter()
        seed(args.rows - len(MEMBERS))
        print(f"seeded {args.rows:,} ledger rows in {time.perf_counter() - started:.1f} s")
        full = pages(args.requests)
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        for name, ((median, p95), (_cpu_median, cpu_p95)) in full.items():
            (_base_median, base_p95), _base_cpu = empty[name]
            print(
                f"{name:22} median {median:6.1f} ms  p95 {p95:6.1f} ms  (CPU p95 {cpu_p95:5.1f} ms)"
                f"   nearly empty p95 {base_p95:5.1f} ms  ratio {p95 / base_p95:4.1f}x"
            )
        seconds, rows, size, peak = export()
        print(
            f"CSV export: {rows:,} rows, {size / 1e6:.1f} MB in {seconds:.1f} s, "
            f"peak allocation while streaming {peak / 1e6:.1f} MB"
        )
    page_p95, cpu_p95 = full["page"][0][1], full["page"][1][1]
    ok = page_p95 < PAGE_TARGET_MS and peak < size / 10
    verdict = "OK" if ok else "MISSED"
    print(
        f"{verdict}: usage page p95 {page_p95:.0f} ms (CPU {cpu_p95:.0f} ms) with {args.rows:,} "
        f"rows (target < {PAGE_TARGET_MS:.0f} ms; {page_p95 / empty['page'][0][1]:.1f}x the "
        f"nearly empty database), CSV peak {peak / 1e6:.1f} MB for {size / 1e6:.1f} MB streamed"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
