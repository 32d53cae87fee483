"""Cost of the key vault: decrypting a stored key and building its client, and key rotation.

Runs in-process on a temporary data dir (its own SQLite database and keyring), no server needed:

1. per request: `ApiKey.client()` (AES-GCM decrypt + RivyaClient) against a baseline of building
   the client from a plaintext key, median and p95 over --calls;
2. `manage.py rotate_encryption_key` over --keys stored keys: wall time and peak growth of the
   resident set (sampled), then peak Python allocations in a second run under tracemalloc.

Exits 1 when decrypt + client takes 100 µs or more (median).

    python bench/vault_keys.py [--calls 20000] [--keys 10000]
"""

import argparse
import io
import os
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_MEDIAN_US = 100.0


def setup_django(data_dir: str) -> None:
    os.environ["RIVYA_DATA_DIR"] = data_dir
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("RIVYA_KEYRING", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rivya_dashboard.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def timed_us(action, calls: int) -> list[float]:
    samples = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        action()
        samples.append((time.perf_counter_ns() - started) / 1000)
    return samples


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95)]


def store_keys(count: int) -> None:
    from rivya_dashboard.vault.models import ApiKey

    rows = [
        ApiKey(label=f"bench-{i}", environment="production", base_url="https://rivya.ai/api/v1")
        for i in range(count)
    ]
    ApiKey.objects.bulk_create(rows, batch_size=1000)
    stored = list(ApiKey.objects.all())
    for key in stored:
        key.store_secret(f"rvya_sk_{key.pk:040d}")
    ApiKey.objects.bulk_update(stored, ["secret", "last4"], batch_size=1000)


def bench_client(calls: int) -> float:
    from rivya_dashboard.rivya.client import RivyaClient
    from rivya_dashboard.vault import transport
    from rivya_dashboard.vault.models import ApiKey

    key = ApiKey.objects.order_by("pk").first()
    raw = key.reveal()
    session = transport.session_for(transport.base_url_for(key))
    for _ in range(200):
        key.client()
    baseline = timed_us(lambda: RivyaClient(key.base_url, raw, session=session), calls)
    vault = timed_us(key.client, calls)
    decrypt_only = timed_us(key.reveal, calls)
    base_median, base_p95 = summary(baseline)
    median, p95 = summary(vault)
    decrypt_median, _ = summary(decrypt_only)
    print(f"client from plaintext (baseline): median {base_median:.1f} µs, p95 {base_p95:.1f} µs")
    print(f"decrypt only: median {decrypt_median:.1f} µs")
    print(f"ApiKey.client() (decrypt + client): median {median:.1f} µs, p95 {p95:.1f} µs")
    print(f"ratio to baseline: {median / base_median:.2f}x")
    return median


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def rotate() -> tuple[float, float, str]:
    """One rotation: wall time and the peak resident-set growth, sampled every 5 ms."""
    from django.core.management import call_command

    before, peak, done = rss_mb(), [0.0], threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak[0] = max(peak[0], rss_mb() - before)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = io.StringIO()
    started = time.perf_counter()
    call_command("rotate_encryption_key", "--remove-old", stdout=out)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return seconds, max(peak[0], rss_mb() - before), out.getvalue().strip()


def bench_rotation(count: int) -> tuple[float, float, float]:
    store_keys(count)
    seconds, rss_growth, output = rotate()
    print(output)
    # A second rotation under tracemalloc: it slows the run, so its time is not reported.
    tracemalloc.start()
    rotate()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"rotate_encryption_key over {count} keys: {seconds:.2f} s, "
        f"peak RSS growth {rss_growth:.1f} MB, peak Python allocations {peak / 2**20:.1f} MB"
    )
    return seconds, rss_growth, peak / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--keys", type=int, default=10000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rivya-bench-vault-") as data_dir:
        setup_django(data_dir)
        seconds, rss_growth, peak_mb = bench_rotation(args.keys)
        median = bench_client(args.calls)
    verdict = "ok" if median < TARGET_MEDIAN_US else "MISSED"
    print(
        f"SUMMARY decrypt+client median {median:.1f} µs (target < {TARGET_MEDIAN_US:.0f} µs) "
        f"{verdict}; rotation of {args.keys} keys {seconds:.2f} s, "
        f"peak RSS +{rss_growth:.1f} MB, peak allocations {peak_mb:.1f} MB"
    )
    return 0 if median < TARGET_MEDIAN_US else 1


if __name__ == "__main__":
    sys.exit(main())
