"""Connection reuse of the low-balance alert: one pooled session against a new pool per alert.

Starts a keep-alive HTTP/1.1 receiver on a free 127.0.0.1 port that counts the TCP connections
it accepts, then sends the same low-balance alert (console.alerts.do_notify, unsaved rows, no
database) N times each way, interleaved in rounds so both see the same machine state:
- baseline: a new guarded session per alert, as the alert did before outbound.py (it called
  vault.ssrf.guarded_session(), which built a session and a pool on every call);
- outbound: the shared guarded session the alert uses now.
Prints connections opened and median/p95 time per alert for each, and the ratio. Exits 1 when
the shared session opens more than one connection per round or is not faster at the median.

    .venv/bin/python bench/outbound_reuse.py [--alerts 200] [--rounds 5]
"""

import argparse
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections = 0

    def setup(self) -> None:
        super().setup()
        Receiver.connections += 1

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Quiet."""


def timed_alerts(count: int, url: str) -> tuple[list[float], int]:
    from django.utils import timezone

    from rivya_dashboard.console.alerts import do_notify
    from rivya_dashboard.console.models import BalanceAlert, BalanceReading
    from rivya_dashboard.vault.models import ApiKey

    key = ApiKey(label="Bench")
    reading = BalanceReading(key=key, credits=10, at=timezone.now())
    before = Receiver.connections
    times = []
    for _ in range(count):
        alert = BalanceAlert(key=key, threshold=100, alert_url=url)
        start = time.perf_counter()
        do_notify(alert, reading)
        times.append((time.perf_counter() - start) * 1000)
        if alert.notify_error:
            raise SystemExit(f"the alert failed: {alert.notify_error}")
    return times, Receiver.connections - before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=200, help="alerts per round and way")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rivya_dashboard.settings")
    # The receiver is on loopback, which the guard opens only with this switch.
    os.environ["RIVYA_ALLOW_PRIVATE_BASE_URLS"] = "1"
    import django

    django.setup()
    from rivya_dashboard import outbound
    from rivya_dashboard.console import alerts

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/alert"

    def new_pool_per_alert() -> outbound.Session:
        return outbound._mounted(outbound.GuardedAdapter(None))

    results: dict[str, tuple[list[float], int]] = {"baseline": ([], 0), "outbound": ([], 0)}
    for _ in range(args.rounds):
        for name, factory in (("baseline", new_pool_per_alert), ("outbound", None)):
            outbound.reset_sessions()
            alerts.guarded_session = factory or outbound.guarded_session
            times, opened = timed_alerts(args.alerts, url)
            total_times, total_opened = results[name]
            results[name] = (total_times + times, total_opened + opened)
    server.shutdown()

    sent = args.alerts * args.rounds
    medians = {}
    for name, (times, opened) in results.items():
        medians[name] = statistics.median(times)
        p95 = statistics.quantiles(times, n=20)[-1]
        print(
            f"{name:9} {sent} alerts: {opened} connections opened, "
            f"median {medians[name]:.2f} ms, p95 {p95:.2f} ms per alert"
        )
    opened_now = results["outbound"][1]
    ratio = medians["baseline"] / medians["outbound"]
    print(
        f"summary: connections {results['baseline'][1]} -> {opened_now} for {sent} alerts; "
        f"median time per alert {ratio:.2f}x faster with the shared session"
    )
    return 0 if opened_now <= args.rounds and ratio > 1 else 1


if __name__ == "__main__":
    sys.exit(main())
