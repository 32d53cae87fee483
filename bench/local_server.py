"""Starting and reaching the console a benchmark runs against on this machine."""

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(origin: str, server: subprocess.Popen, *, seconds: float = 120) -> None:
    """Return once /healthz answers 200; stop the benchmark if the server dies or never answers."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            requests.get(f"{origin}/healthz", timeout=1).raise_for_status()
            return
        except requests.RequestException:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the console did not start") from None
            time.sleep(0.2)


def start_serve(
    data_dir: str, *, workers: int, threads: int, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, int, Path]:
    """`manage.py serve --no-worker` on a free port with SQLite in data_dir, without the sandbox;
    returns the process (its own session, for stop()), the port and its log file."""
    root = Path(__file__).resolve().parent.parent
    environment = {
        **os.environ,
        "RIVYA_DATA_DIR": data_dir,
        "RIVYA_LOG_LEVEL": "WARNING",
        "RIVYA_SANDBOX": "0",
        **(env or {}),
    }
    environment.pop("DATABASE_URL", None)
    port = free_port()
    log = Path(data_dir) / "server.log"
    command = [sys.executable, str(root / "manage.py"), "serve", "--port", str(port)]
    command += ["--no-worker", "--workers", str(workers), "--threads", str(threads)]
    server = subprocess.Popen(
        command,
        env=environment,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    # A fresh data dir is migrated and its static files collected first: slow on a busy machine.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and server.poll() is None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return server, port, log
        except OSError:
            time.sleep(0.3)
    if server.poll() is None:
        stop(server)
    sys.exit("the console did not start:\n" + log.read_text(errors="replace")[-2000:])


def stop(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
