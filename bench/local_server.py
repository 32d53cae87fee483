"""Starting and reaching the console a benchmark runs against on this machine."""

import socket
import subprocess
import time

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
