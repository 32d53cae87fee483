"""Per-call overhead of RivyaClient over a raw requests call, both against the sandbox.

Starts its own console (manage.py runserver on a free port, temporary data dir, sandbox key from
`manage.py sandbox_key`), or targets --url/--key. Times GET /credits --calls times each way,
interleaved so both see the same server state: over 127.0.0.1, then in-process through
tests/inprocess.py; and in-process against a stub that answers instantly, which leaves only
the client's own cost (the sandbox's database work varies by milliseconds between calls and
hides it). Both ways share one pooled session and parse the JSON. Exits 1 when the client adds
more than 1 ms per call (median, stub).

    python bench/client_overhead.py [--calls 300] [--url SANDBOX_API_BASE_URL --key KEY]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from local_server import free_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_OVERHEAD_MS = 1.0
TIMEOUT = (3.05, 30.0)
STUB_BASE = "http://127.0.0.1/sandbox/api/v1"


def manage(*args: str, env: dict) -> str:
    command = [sys.executable, str(ROOT / "manage.py"), *args]
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout


@contextmanager
def console(
    data_dir: str, server_command: list[str] | None = None
) -> Iterator[tuple[str, str, subprocess.Popen]]:
    """A console on a free port with its own data dir; yields (API base URL, key, process).

    The server is `manage.py runserver ADDRESS --noreload`, or `server_command + [ADDRESS]`.
    """
    env = {
        **os.environ,
        "RIVYA_DATA_DIR": data_dir,
        "RIVYA_SANDBOX": "1",
        "RIVYA_SANDBOX_RATE_LIMIT": "1000000",
        "RIVYA_LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    manage("migrate", "--noinput", env=env)
    key = manage("sandbox_key", "--credits", "1000", env=env).strip().splitlines()[-1]
    port = free_port()
    address = f"127.0.0.1:{port}"
    command = [*server_command, address] if server_command else None
    server = subprocess.Popen(
        command or [sys.executable, str(ROOT / "manage.py"), "runserver", address, "--noreload"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/sandbox/api/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(base + "/models", timeout=1).raise_for_status()
                break
            except requests.RequestException:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the console did not start") from None
                time.sleep(0.2)
        yield base, key, server
    finally:
        server.terminate()
        server.wait(timeout=10)


def median_ms(call: Callable[[], object], other: Callable[[], object], calls: int) -> tuple:
    """Median ms of `call` and of `other`, run alternately `calls` times after a warm-up."""
    for _ in range(20):
        call()
        other()
    first, second = [], []
    for _ in range(calls):
        start = time.perf_counter_ns()
        call()
        middle = time.perf_counter_ns()
        other()
        end = time.perf_counter_ns()
        first.append((middle - start) / 1e6)
        second.append((end - middle) / 1e6)
    return statistics.median(first), statistics.median(second)


def measure(label: str, base: str, key: str, session: requests.Session, calls: int) -> float:
    from rivya_dashboard.rivya.client import RivyaClient

    client = RivyaClient(base, key, session=session)
    headers = {"Authorization": f"Bearer {key}"}

    def raw() -> object:
        response = session.get(base + "/credits", headers=headers, timeout=TIMEOUT)
        response.raise_for_status()
        return response.json()

    raw_ms, client_ms = median_ms(raw, client.get_credits, calls)
    overhead = client_ms - raw_ms
    print(
        f"{label}: raw requests median {raw_ms:.3f} ms, RivyaClient median {client_ms:.3f} ms, "
        f"overhead {overhead * 1000:+.0f} µs ({overhead / raw_ms:+.1%})"
    )
    return overhead


def stub_app(environ: dict, start_response: Callable) -> list[bytes]:
    """A WSGI app that answers /credits instantly: what is left of a call is the client."""
    start_response("200 OK", [("Content-Type", "application/json"), ("X-Request-Id", "req_x")])
    return [b'{"current_credits": 1000}']


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--url", help="sandbox API base URL of a running console")
    parser.add_argument("--key", help="sandbox key for --url")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rivya_dashboard.settings")
    from tests.inprocess import in_process_session

    own = measure(
        "in-process stub server", STUB_BASE, "k", in_process_session(stub_app), args.calls
    )
    if args.url:
        measure("over HTTP", args.url, args.key, requests.Session(), args.calls)
    else:
        with (
            tempfile.TemporaryDirectory(prefix="rivya-bench-") as data_dir,
            console(data_dir) as (base, key, _server),
        ):
            measure("over HTTP (127.0.0.1, runserver)", base, key, requests.Session(), args.calls)
            import django

            django.setup()
            measure("in-process sandbox", STUB_BASE, key, in_process_session(), args.calls)
    verdict = "OK" if own <= TARGET_OVERHEAD_MS else "MISSED"
    print(
        f"summary: RivyaClient adds {own * 1000:.0f} µs per call over raw requests "
        f"(median, stub server; target < {TARGET_OVERHEAD_MS:.0f} ms): {verdict}"
    )
    return 0 if verdict == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
