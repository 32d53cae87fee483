"""The request inspector's three numbers: what recording adds to a call, how fast its list answers
with 100,000 kept calls, and how much memory pruning 100,000 calls takes.

Runs in-process on a temporary data dir (its own SQLite database, or --database-url):

1. recording: --calls calls through a RivyaClient on an in-process session to a small API, each
   answered with a 2 kB JSON body, interleaved with and without the outbound exchange listener
   that keeps them (the inspector's whole path: redaction, the tap on the body, the row written);
   the added time is the difference of the two p95s, measured in the same run;
2. the inspector list as the owner (newest first, and filtered by status class, operation and
   member), median and p95 over --requests, against the same page on a nearly empty database;
3. pruning --rows calls past their retention: wall time and the peak Python allocation while it
   runs (tracemalloc), which must stay flat, far below what the rows weigh.

Exits 1 when recording adds 1 ms or more at p95, the list's p95 reaches 100 ms, or pruning's peak
allocation reaches a tenth of the rows' size.

    python bench/workbench.py [--rows 100000] [--calls 400] [--requests 40]
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from usage import setup_django, signed_in_client, summary  # noqa: E402

RECORD_TARGET_MS = 1.0
LIST_TARGET_MS = 100.0
BODY = json.dumps(
    {"object": "list", "data": [{"id": f"m{n}", "label": "x" * 40} for n in range(40)]}
)


def small_api(environ: dict, start_response) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/json"), ("X-Request-Id", "req_bench")])
    return [BODY.encode()]


def recording(calls: int) -> tuple[dict, int]:
    """Wall and CPU milliseconds per call, with and without the listener. The process's CPU
    time includes SQLite's work (it runs in this process), so on a shared, busy machine it shows
    the cost of recording apart from the time spent waiting for a core."""
    from rivya_dashboard import outbound
    from rivya_dashboard.rivya.client import RivyaClient
    from rivya_dashboard.workbench.models import ApiCall
    from tests.inprocess import in_process_session

    plain = RivyaClient(
        "https://bench.example/v1", "rvya_sk_" + "b" * 40, session=in_process_session(small_api)
    )
    kept_session = outbound._reported(in_process_session(small_api))
    kept = RivyaClient("https://bench.example/v1", "rvya_sk_" + "b" * 40, session=kept_session)
    for client in (plain, kept):
        client.list_models()  # warm both paths
    wall: dict[str, list[float]] = {"plain": [], "kept": []}
    cpu: dict[str, list[float]] = {"plain": [], "kept": []}
    before = ApiCall.objects.count()
    for _ in range(calls):
        for name, client in random.sample([("plain", plain), ("kept", kept)], 2):
            started, started_cpu = time.perf_counter(), time.process_time()
            client.list_models()
            wall[name].append((time.perf_counter() - started) * 1000)
            cpu[name].append((time.process_time() - started_cpu) * 1000)
    found = {name: (summary(wall[name]), summary(cpu[name])) for name in wall}
    return found, ApiCall.objects.count() - before


def seed(rows: int) -> int:
    from datetime import timedelta

    from django.utils import timezone

    from rivya_dashboard.accounts.models import User
    from rivya_dashboard.workbench.models import ApiCall

    random.seed(11)
    members = list(User.objects.all()) or [None]
    now = timezone.now()
    operations = ["createGeneration", "getGeneration", "getCredits", "streamChatCompletion"]
    body = BODY[:1500]
    batch, weight = [], 0
    for n in range(rows):
        member = random.choice(members)
        call = ApiCall(
            at=now - timedelta(seconds=random.randrange(20 * 86400)),
            member=member,
            member_name=member.username if member else "system",
            key_label="Sandbox",
            operation=random.choice(operations),
            method="GET",
            url=f"https://rivya.ai/api/v1/generations/task_{n}",
            path=f"/api/v1/generations/task_{n}",
            status=random.choices([200, 202, 404, 500], weights=[80, 10, 7, 3])[0],
            elapsed_ms=random.randint(20, 900),
            request_id=f"req_{n:024d}",
            request_headers=[["Authorization", "Bearer rvya_sk_…abcd"]],
            response_headers=[["Content-Type", "application/json"]],
            response_body=body,
            response_size=len(body),
            stored_bytes=len(body) + 60,
        )
        weight += call.stored_bytes
        batch.append(call)
        if len(batch) == 5000:
            ApiCall.objects.bulk_create(batch)
            batch = []
    ApiCall.objects.bulk_create(batch)
    return weight


def list_pages(requests: int) -> dict[str, tuple[tuple[float, float], tuple[float, float]]]:
    from rivya_dashboard.accounts.models import User

    client = signed_in_client()
    member = User.objects.order_by("pk").first()
    cases = {
        "newest first": {},
        "4xx only": {"status": "4xx"},
        "one operation": {"operation": "getGeneration"},
        "one member": {"member": str(member.pk)},
    }
    found = {}
    for name, params in cases.items():
        client.get("/workbench/calls/", params)
        wall, cpu = [], []
        for _ in range(requests):
            started, started_cpu = time.perf_counter(), time.process_time()
            response = client.get("/workbench/calls/", params)
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
            assert response.status_code == 200, response.content[-2000:]
        found[name] = (summary(wall), summary(cpu))
    return found


def pruning() -> tuple[int, float, int]:
    from django.conf import settings

    from rivya_dashboard.workbench.inspector import do_prune

    settings.RIVYA_INSPECTOR_RETENTION_DAYS = 1
    settings.RIVYA_INSPECTOR_MAX_MB = 10_000
    tracemalloc.start()
    started = time.perf_counter()
    removed = do_prune()
    seconds = time.perf_counter() - started
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return removed, seconds, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        setup_django(data_dir, args.database_url)
        signed_in_client()
        timings, kept_rows = recording(args.calls)
        (plain_wall, plain_cpu), (kept_wall, kept_cpu) = timings["plain"], timings["kept"]
        added = kept_cpu[1] - plain_cpu[1]
        print(
            f"recording ({kept_rows} calls kept): plain call median {plain_wall[0]:.2f} ms p95 "
            f"{plain_wall[1]:.2f} ms (CPU p95 {plain_cpu[1]:.2f} ms); kept median "
            f"{kept_wall[0]:.2f} ms p95 {kept_wall[1]:.2f} ms (CPU p95 {kept_cpu[1]:.2f} ms); "
            f"added CPU p95 {added:.2f} ms, wall median {kept_wall[0] - plain_wall[0]:.2f} ms"
        )
        # The baseline needs each operation once, or its filter would be refused.
        weight = seed(40)
        empty = list_pages(args.requests)
        started = time.perf_counter()
        weight += seed(args.rows - 40)
        elapsed = time.perf_counter() - started
        print(f"seeded {args.rows:,} calls ({weight / 1e6:.0f} MB) in {elapsed:.1f} s")
        full = list_pages(args.requests)
        for name, ((median, p95), (_cpu_median, cpu_p95)) in full.items():
            base_p95 = empty[name][1][1]
            print(
                f"list, {name:14} median {median:6.1f} ms  p95 {p95:6.1f} ms  (CPU p95 "
                f"{cpu_p95:5.1f} ms)   nearly empty CPU p95 {base_p95:5.1f} ms  ratio "
                f"{cpu_p95 / base_p95:4.1f}x"
            )
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        removed, seconds, peak = pruning()
        print(f"pruned {removed:,} calls in {seconds:.1f} s, peak allocation {peak / 1e6:.1f} MB")
    worst = max(cpu[1] for _wall, cpu in full.values())
    ok = added < RECORD_TARGET_MS and worst < LIST_TARGET_MS and peak < weight / 10
    verdict = "OK" if ok else "MISSED"
    print(
        f"{verdict}: recording adds {added:.2f} ms CPU at p95 (target < {RECORD_TARGET_MS:.0f} ms);"
        " "
        f"inspector list CPU p95 {worst:.0f} ms with {args.rows:,} calls (target < "
        f"{LIST_TARGET_MS:.0f} ms); pruning {removed:,} calls peaked at {peak / 1e6:.1f} MB "
        f"for {weight / 1e6:.0f} MB of rows"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
