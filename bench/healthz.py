"""Requests per second of `manage.py serve` on /healthz, against a static file on the same server.

Starts `serve --no-worker` on a free port with a temporary data dir (SQLite), then drives it from
--clients threads with keep-alive connections for --seconds per target. The static file goes
through the same gunicorn and WhiteNoise but no view and no database, so the ratio shows what the
health check's middleware, view and `SELECT 1` cost. Numbers are for the record, not a target; the
load generator shares the machine's cores with the server, so wrk gives higher absolute figures.

    python bench/healthz.py [--clients 16] [--seconds 5] [--workers 2] [--threads 32]
"""

import argparse
import http.client
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from local_server import free_port

ROOT = Path(__file__).resolve().parent.parent


def wait_ready(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("serve exited before answering")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("serve did not answer /healthz in time")


def drive(port: int, path: str, clients: int, seconds: float) -> tuple[float, int]:
    """Return (requests per second, non-200 answers) for `clients` keep-alive loops on `path`."""
    counts = [0] * clients
    failures = [0] * clients
    stop_at = time.monotonic() + seconds

    def loop(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < stop_at:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            counts[index] += 1
            failures[index] += response.status != 200
        connection.close()

    threads = [threading.Thread(target=loop, args=(index,)) for index in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started), sum(failures)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32)
    args = parser.parse_args()

    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
        env.update(RIVYA_DATA_DIR=data_dir, RIVYA_DEBUG="0", RIVYA_LOG_LEVEL="WARNING")
        command = [sys.executable, str(ROOT / "manage.py"), "serve", "--no-worker", "-v", "0"]
        command += ["--port", str(port), "--workers", str(args.workers)]
        command += ["--threads", str(args.threads)]
        server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        try:
            wait_ready(port, server)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/setup/", timeout=5) as page:
                static = re.search(r'href="(/static/css/[^"]+\.css)"', page.read().decode())
            drive(port, "/healthz", args.clients, 1.0)  # warm every worker thread
            health, health_failures = drive(port, "/healthz", args.clients, args.seconds)
            baseline, static_failures = drive(port, static.group(1), args.clients, args.seconds)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)

    print(f"/healthz: {health:.0f} req/s ({health_failures} non-200)")
    print(f"static file (baseline): {baseline:.0f} req/s ({static_failures} non-200)")
    print(
        f"summary: /healthz {health:.0f} req/s = {health / baseline:.2f}x the static baseline, "
        f"{args.workers} workers x {args.threads} threads, {args.clients} clients"
    )
    return 1 if health_failures or static_failures else 0


if __name__ == "__main__":
    sys.exit(main())
