"""`manage.py serve` as a person runs it: one real process tree on a free port and a temp data dir.

The supervisor's rules are tested first on small stand-in processes. The server tests share one
server (starting it migrates a fresh database); the SIGTERM test stops it, so it comes last.
"""

import gc
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rivya_dashboard.console import web_worker
from rivya_dashboard.console.supervise import STABLE_SECONDS, Child, Supervisor
from tests.conftest import OWN_SQLITE_ONLY, subprocess_env
from tests.served import ROOT, Served, free_port, get

pytestmark = OWN_SQLITE_ONLY

METRICS_TOKEN = "serve-metrics-token"


def serve_env(data_dir: Path) -> dict[str, str]:
    return subprocess_env(
        RIVYA_DATA_DIR=str(data_dir),
        RIVYA_DEBUG="0",
        PYTHONUNBUFFERED="1",
        RIVYA_METRICS_TOKEN=METRICS_TOKEN,
    )


def is_alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_a_crash_loop_backs_off_up_to_a_limit(caplog):
    child = Child("flaky", [sys.executable, "-c", "raise SystemExit(3)"])
    child.start()
    delays = []
    for _ in range(7):
        child.process.wait()
        crashed_pid = child.process.pid
        crashed_at = child.started_at + 0.5
        child.check(crashed_at)
        delays.append(child.restart_at - crashed_at)
        child.check(child.restart_at)
    child.process.wait()

    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert f"flaky (pid {crashed_pid}) exited with code 3; restarting in 30 s" in caplog.text


def test_a_crash_after_a_long_run_restarts_after_the_first_delay():
    child = Child("flaky", [sys.executable, "-c", "raise SystemExit(3)"], retry_seconds=30)
    child.start()
    child.process.wait()

    exited_at = child.started_at + STABLE_SECONDS
    child.check(exited_at)

    assert child.restart_at - exited_at == 1


def test_stop_kills_a_child_that_ignores_sigterm(tmp_path, caplog):
    ready = tmp_path / "ready"
    stubborn = Child(
        "stubborn",
        [
            sys.executable,
            "-c",
            "import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "pathlib.Path(sys.argv[1]).touch(); time.sleep(60)",
            str(ready),
        ],
    )
    stubborn.start()
    while not ready.exists():
        assert stubborn.is_running()
        time.sleep(0.02)

    Supervisor([stubborn], stop_timeout=0.3).stop()

    assert stubborn.process.returncode == -signal.SIGKILL
    assert "stubborn did not stop in time; killing it" in caplog.text


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("serve") / "not-yet" / "data"
    server = Served(free_port(), data_dir, serve_env(data_dir))
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


def test_it_prepares_the_data_dir_and_shows_the_setup_page(served):
    assert f"running at http://127.0.0.1:{served.port}/" in served.output()
    assert (served.data_dir / "rivya.sqlite3").exists()
    assert (served.data_dir / "static" / "staticfiles.json").exists()

    status, final_url, body = get(served.url("/"))

    assert status == 200
    assert final_url == served.url("/setup/")
    assert 'name="username"' in body and 'name="password2"' in body
    stylesheet = re.search(r'href="(/static/css/console\.[0-9a-f]+\.css)"', body)
    assert stylesheet, "the page should link the hashed stylesheet that collectstatic wrote"
    assert get(served.url(stylesheet.group(1)))[0] == 200


def raw_exchange(port: int, request: bytes) -> tuple[str, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return status_line, headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (
            b"GET /sandbox/api/v1/models?cursor=" + b"x" * 9000 + b" HTTP/1.1\r\n\r\n",
            414,
            "uri_too_long",
        ),
        (
            b"GET /sandbox/api/v1/models HTTP/1.1\r\nHost: a\r\nX-Big: "
            + b"y" * 9000
            + b"\r\n\r\n",
            431,
            "headers_too_large",
        ),
    ],
)
def test_requests_gunicorn_refuses_get_the_api_json_error(served, request_bytes, status, code):
    status_line, headers, body = raw_exchange(served.port, request_bytes)

    assert status_line.startswith(f"HTTP/1.1 {status} ")
    assert headers["Content-Type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == code
    assert error["requestId"] == headers["X-Request-Id"]


def test_a_long_url_within_gunicorn_limits_reaches_the_sandbox(served):
    status_line, headers, body = raw_exchange(
        served.port,
        b"GET /sandbox/api/v1/credits?cursor=" + b"x" * 6000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Connection: close\r\n\r\n",
    )

    assert status_line.startswith("HTTP/1.1 401 ")
    assert json.loads(body)["error"]["requestId"] == headers["X-Request-Id"]


def scrape(served) -> str:
    request = urllib.request.Request(
        served.url("/metrics"), headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read().decode()


def healthz_count(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "rivya_http_requests_total" and sample.labels.get("view") == "healthz"
    )


def test_metrics_add_up_every_web_process(served):
    before = healthz_count(scrape(served))
    for _ in range(12):
        assert get(served.url("/healthz"))[0] == 200

    text = scrape(served)

    assert healthz_count(text) == before + 12
    assert (served.data_dir / "metrics").is_dir()
    assert "rivya_tasks_ready" in text


def test_it_refuses_a_port_that_is_taken(served):
    second = subprocess.run(
        [sys.executable, "manage.py", "serve", "--port", str(served.port)],
        cwd=ROOT,
        env=serve_env(served.data_dir),
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert second.returncode == 1
    message = second.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert f"Port {served.port} on 127.0.0.1 is already in use" in message
    assert "Traceback" not in second.stdout + second.stderr
    assert get(served.url("/healthz"))[0] == 200


def test_it_runs_its_own_code_when_started_from_another_folder(served, tmp_path):
    decoy = tmp_path / "rivya_dashboard"
    decoy.mkdir()
    (decoy / "__init__.py").write_text('raise ImportError("the decoy in the current folder")\n')
    elsewhere = Served(
        free_port(), served.data_dir, serve_env(served.data_dir), "--no-worker", cwd=tmp_path
    )
    try:
        elsewhere.wait_healthy()
        elsewhere.wait_for(r"Booting worker with pid")
        assert "decoy" not in elsewhere.output()
        assert get(elsewhere.url("/healthz"))[0] == 200
    finally:
        elsewhere.stop()


# What each child logs once it is ready again: gunicorn listening, the task worker polling.
READY = {"web": r"Listening at: (http://\S+)", "worker": r"Starting worker (worker_id)="}


@pytest.mark.parametrize("name", ["worker", "web"])
def test_it_restarts_a_crashed_child(served, name):
    before = served.output().count(f"{name} started (pid")
    (pid,) = served.wait_for(rf"{name} started \(pid (\d+)\)", count=before)

    os.kill(int(pid), signal.SIGKILL)

    served.wait_for(rf"{name} \(pid {pid}\) exited with code -9; restarting in \d+ s")
    (new_pid,) = served.wait_for(rf"{name} started \(pid (\d+)\)", count=before + 1)
    assert new_pid != pid
    served.wait_for(READY[name], count=before + 1)
    served.wait_healthy(timeout=10)


def wait_until_gone(pids: set[int], timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while any(is_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if is_alive(pid)]


def assert_port_free(port: int) -> None:
    with socket.socket() as probe:
        # Like any server: connections left in TIME_WAIT must not count as "in use".
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
        probe.listen()


def test_a_web_only_serve_killed_outright_leaves_no_orphans_holding_the_port(served):
    doomed = Served(free_port(), served.data_dir, serve_env(served.data_dir), "--no-worker")
    try:
        doomed.wait_healthy()
        doomed.wait_for(r"Booting worker with pid")
        assert "worker started" not in doomed.output()
        pids = doomed.child_pids()

        doomed.process.kill()

        assert not wait_until_gone(pids), doomed.output()
        assert_port_free(doomed.port)
    finally:
        doomed.stop()


def test_it_stops_every_process_on_sigterm(served):
    pids = served.child_pids()
    assert len(pids) >= 3, served.output()  # web, its gunicorn worker(s), the task worker

    served.process.send_signal(signal.SIGTERM)

    assert served.process.wait(timeout=20) == 0, served.output()
    assert "Stopped" in served.output()
    assert not wait_until_gone(pids, timeout=5)
    assert_port_free(served.port)


def test_a_web_process_keeps_what_it_loaded_out_of_full_collections():
    """Full garbage collections hold the GIL, and with it every open chat stream; once Django is
    loaded, a web process freezes what it holds so those passes skip it."""
    gc.unfreeze()
    try:
        web_worker.post_worker_init(None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
