"""What the chat relay adds to a streamed reply, and 50 streams at once through `serve`.

Starts two servers with `manage.py serve --no-worker` on free ports: the console, and the
sandbox as its upstream (a separate server with its own data dir, as rivya.ai would be, so an
upstream stream never competes with the console for the same threads or SQLite's one writer;
`--shared-db` puts both in one data dir, as the bench did before). Then:

1. For 1, 3 and 5 concurrent streams, `--rounds` times each, interleaved: the same turn read
   straight from the sandbox (POST /chat/completions/stream) with the same key, and through the
   console as chat.js does it (one POST, whose response carries the sent turn and then the reply;
   earlier code answered the POST with the turn and streamed the reply on a GET). Each slot's
   direct turns continue one Rivya chat session, as its console chat does, so both carry the same
   history upstream (the sandbox reads a session's messages for every turn). Added time to first
   token = console - direct, at the median and p95; added total stream time likewise, with the
   ratio console / direct. Targets: ≤ 10 ms p50, ≤ 25 ms p95, ≤ 15 ms total (p50). Where the time
   goes is printed under each level: the send request (to the sent turn, and the server's own
   time from its Server-Timing header), the reader's own time to first token inside the console
   (key, ledger row and upstream call; minus the direct time it is what the console spends before
   and around the call), and, for earlier code, opening the event stream (GET to first byte).
2. Waves of 50 turns at once (in 50 chats) for `--seconds` (at least one wave), with slower
   tokens so the streams overlap, while another thread keeps opening the chat page. Targets:
   first byte of the reply's stream p95 < 1 s (now the send's own response, so this includes the
   send), no stream stalls (a gap > 3 s between events), every stream ends with its final event,
   the page p95 < 1 s.

With `--before DIR` (a checkout of earlier code, e.g. `git archive main | tar -x -C DIR`) a
third server runs that code against the same sandbox, and each round reads its streams too, in
turn with the others: before and after from one run on one machine under the same load.

    python bench/sse_relay.py [--rounds 10] [--seconds 10] [--workers 2] [--threads 32]
                              [--shared-db] [--before DIR]
"""

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from local_server import free_port
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rivya_dashboard.rivya.sse import SSEParser  # noqa: E402

MODEL = "gpt-5-2-chat"
LEVELS = (1, 3, 5)
LOAD_STREAMS = 50
TARGET_ADDED_TTFT_P50 = 10.0
TARGET_ADDED_TTFT_P95 = 25.0
TARGET_ADDED_TOTAL = 15.0
TARGET_FIRST_BYTE_P95 = 1000.0
TARGET_PAGE_P95 = 1000.0
STALL_SECONDS = 3.0
LOAD_TOKEN_DELAY_MS = 60
TIMEOUT = (3.05, 60.0)

SANDBOX_SETUP = """
from io import StringIO
from django.core.management import call_command
out = StringIO()
call_command("sandbox_key", "--credits", "100000000", stdout=out)
print(out.getvalue().strip().splitlines()[-1])
"""

SETUP = """
import json
from django.test import Client
from rivya_dashboard.accounts.models import User
from rivya_dashboard.console.models_catalog import do_store_catalogue
from rivya_dashboard.vault.models import ApiKey
raw = "{raw}"
owner = User.objects.create_user("bench", "bench@example.test", "bench-password-1", role="owner")
key = ApiKey.objects.create(label="Bench", environment="custom", base_url="{upstream}")
key.store_secret(raw)
key.save(update_fields=["secret", "last4"])
do_store_catalogue(key.client().list_models())
client = Client()
client.force_login(owner)
print(json.dumps({{"raw": raw, "key": key.pk, "cookie": client.cookies["sessionid"].value}}))
"""

DELAY_SCRIPT = """
from rivya_dashboard.sandbox.models import SandboxSettings
SandboxSettings.objects.filter(pk=SandboxSettings.load().pk).update(token_delay_ms={ms})
"""


@dataclass
class Reading:
    ttft: float
    total: float
    first_byte: float = 0.0
    max_gap: float = 0.0
    finished: bool = True
    send: float = 0.0  # the send request's round trip
    send_server: float = 0.0  # the send request's time inside Django (Server-Timing app)
    opened: float = 0.0  # GET of the event stream to its first byte
    reader_ttft: float = 0.0  # the console's reader: started to first words (its own clock)
    session_id: str = ""  # the Rivya chat session the turn was in (direct streams)


def manage(*args: str, env: dict, root: Path = ROOT) -> str:
    command = [sys.executable, str(root / "manage.py"), *args]
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout


def wait_healthy(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise SystemExit(f"the server at {url} did not start")
        time.sleep(0.2)


@dataclass
class Server:
    root: Path  # the checkout whose manage.py serves
    env: dict
    url: str = ""


@contextmanager
def servers(
    workers: int, threads: int, shared_db: bool, before: Path | None
) -> Iterator[list[Server]]:
    """[console, upstream sandbox, and the earlier console when `before` is given], running."""
    with tempfile.TemporaryDirectory(prefix="rivya-sse-bench-") as data_dir:
        env = {
            **os.environ,
            "RIVYA_DATA_DIR": data_dir,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "RIVYA_SANDBOX_RATE_LIMIT": "100000000",
            "RIVYA_LOG_LEVEL": "WARNING",
            "RIVYA_MFA_REQUIRED": "0",
            # The upstream is a second server on 127.0.0.1, reached as rivya.ai would be.
            "RIVYA_ALLOW_PRIVATE_BASE_URLS": "1",
        }
        upstream_dir = Path(data_dir) / ("." if shared_db else "upstream")
        upstream_dir.mkdir(exist_ok=True)
        started_servers = [
            Server(ROOT, env),
            Server(ROOT, {**env, "RIVYA_DATA_DIR": str(upstream_dir.resolve())}),
        ]
        if before is not None:
            (Path(data_dir) / "before").mkdir()
            before_env = {**env, "RIVYA_DATA_DIR": str(Path(data_dir) / "before")}
            started_servers.append(Server(before.resolve(), before_env))
        started = []
        try:
            for server in started_servers:
                port = free_port()
                command = [sys.executable, str(server.root / "manage.py"), "serve", "--no-worker"]
                command += [f"--port={port}", f"--workers={workers}", f"--threads={threads}"]
                log = open(Path(data_dir) / f"server-{port}.log", "w")  # noqa: SIM115
                # In the checkout's own folder: the earlier code's `serve` starts gunicorn with
                # `python -m`, which imports from the current folder first.
                process = subprocess.Popen(
                    command, cwd=server.root, env=server.env, stdout=log, stderr=subprocess.STDOUT
                )
                started.append(process)
                server.url = f"http://127.0.0.1:{port}"
                wait_healthy(server.url, process)
            yield started_servers
        except Exception:
            for log_file in Path(data_dir).glob("server-*.log"):
                print(f"--- {log_file.name} (last lines)")
                print("\n".join(log_file.read_text().splitlines()[-15:]))
            raise
        finally:
            for process in started:
                process.terminate()
            for process in started:
                process.wait(timeout=30)


def events(response: requests.Response, started: float) -> Iterator[tuple[float, str, str]]:
    """(ms since started, event name, data) as they arrive; '' marks the first bytes."""
    parser = SSEParser()
    first = True
    while chunk := response.raw.read1(65536):
        now = (time.perf_counter() - started) * 1000
        if first:
            first = False
            yield now, "", ""
        for event in parser.feed(chunk):
            yield now, event.event, event.data


def read(response: requests.Response, started: float, final: set[str]) -> Reading:
    ttft = first_byte = previous = reader_ttft = sent = 0.0
    max_gap = 0.0
    finished = False
    session_id = ""
    for at, name, data in events(response, started):
        if name == "":
            first_byte = previous = at
            continue
        if name == "session":
            session_id = json.loads(data).get("session_id", "")
        if name == "sent":
            sent = at  # the send request's own answer, when the reply follows on it
        max_gap = max(max_gap, at - previous)
        previous = at
        if name == "delta" and not ttft:
            ttft = at
        if name in final:
            finished = name == "done"
            # The finished turn's html shows the reader's own time to first token.
            found = re.search(r"first token (\d+) ms", data)
            reader_ttft = float(found.group(1)) if found else 0.0
            break
    response.close()
    reading = Reading(
        ttft, previous, first_byte, max_gap, finished, send=sent, reader_ttft=reader_ttft
    )
    reading.session_id = session_id
    return reading


class Direct:
    """One slot's straight line to the sandbox. Like the console's chat in the same slot, it
    continues one Rivya chat session, so both turns carry the same history upstream and the
    difference between them is the relay's alone."""

    def __init__(self, api: str, raw: str) -> None:
        self.api = api
        self.raw = raw
        self.http = requests.Session()
        self.session_id = ""

    def turn(self) -> Reading:
        reading = direct(self.http, self.api, self.raw, self.session_id)
        self.session_id = reading.session_id or self.session_id
        return reading


def direct(http: requests.Session, api: str, raw: str, session_id: str = "") -> Reading:
    started = time.perf_counter()
    body = {"model": MODEL, "message": "Write a concise launch plan"}
    if session_id:
        body["session_id"] = session_id
    response = http.post(
        api + "/chat/completions/stream",
        json=body,
        headers={"Authorization": f"Bearer {raw}", "Idempotency-Key": str(uuid.uuid4())},
        stream=True,
        timeout=TIMEOUT,
    )
    response.raise_for_status()
    return read(response, started, {"done", "error"})


class Browser:
    """A signed-in member's HTTP session doing what chat.js does."""

    def __init__(self, url: str, cookie: str, key: int) -> None:
        self.url = url
        self.key = key
        self.http = requests.Session()
        # gunicorn drops idle keep-alive connections after 2 s; a request sent on one just as it
        # closes is reset. Resending is safe: every POST carries its idempotency key.
        retry = Retry(total=2, connect=2, read=2, status=0, allowed_methods=None)
        self.http.mount("http://", HTTPAdapter(max_retries=retry))
        self.http.cookies.set("sessionid", cookie)
        self.http.get(url + "/chat/", timeout=TIMEOUT).raise_for_status()
        self.csrf = self.http.cookies["csrftoken"]

    def post(self, path: str, data: dict, htmx: bool) -> requests.Response:
        headers = {"X-CSRFToken": self.csrf, **({"HX-Request": "true"} if htmx else {})}
        return self.http.post(self.url + path, data=data, headers=headers, timeout=TIMEOUT)

    def stream(self, html: str, started: float) -> Reading:
        found = re.search(r'data-stream-url="([^"]+)"', html)
        if found is None:
            # The reply ended before its page was read (so it cannot be timed), or was refused.
            done = 'data-status="done"' in html
            return Reading(0.0, (time.perf_counter() - started) * 1000, finished=done)
        path = found.group(1)
        after = re.search(r'data-after="(\d+)"', html).group(1)
        stream_started = time.perf_counter()
        response = self.http.get(f"{self.url}{path}?after={after}", stream=True, timeout=TIMEOUT)
        reading = read(response, started, {"done", "error", "stopped"})
        reading.first_byte -= (stream_started - started) * 1000
        reading.opened = reading.first_byte
        return reading

    def new_chat(self) -> tuple[int, Reading]:
        started = time.perf_counter()
        data = {"key": self.key, "model": MODEL, "message": "Write a concise launch plan"}
        response = self.post("/chat/new", {**data, "idempotency_key": uuid.uuid4().hex}, True)
        page = self.http.get(self.url + response.headers["HX-Redirect"], timeout=TIMEOUT)
        chat = int(re.search(r"/chat/(\d+)/", response.headers["HX-Redirect"]).group(1))
        return chat, self.stream(page.text, started)

    def turn(self, chat: int) -> Reading:
        """One request, as chat.js sends it: the sent turn arrives as the response's first
        event and the reply follows on the same response. Earlier code (--before) answers with
        the turn's html instead, and its reply is read from a second request, as it was then."""
        started = time.perf_counter()
        data = {"message": "Write a concise launch plan", "idempotency_key": uuid.uuid4().hex}
        headers = {"X-CSRFToken": self.csrf, "HX-Request": "true", "Accept": "text/event-stream"}
        response = self.http.post(
            f"{self.url}/chat/{chat}/send", data=data, headers=headers, stream=True, timeout=TIMEOUT
        )
        if response.headers.get("Content-Type", "").startswith("text/event-stream"):
            reading = read(response, started, {"done", "error", "stopped"})
        else:
            sent = (time.perf_counter() - started) * 1000
            reading = self.stream(response.text, started)
            reading.send = sent
        timing = re.search(r"app;dur=([\d.]+)", response.headers.get("Server-Timing", ""))
        reading.send_server = float(timing.group(1)) if timing else 0.0
        return reading


def at_once(count: int, work: Callable[[int], object]) -> list:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(work, range(count)))


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


class Chats:
    """max(LEVELS) members' browsers on one console, each with a chat of its own."""

    def __init__(self, url: str, setup: dict) -> None:
        self.browsers = [Browser(url, setup["cookie"], setup["key"]) for _ in range(max(LEVELS))]
        self.chats = at_once(max(LEVELS), lambda slot: self.browsers[slot].new_chat()[0])

    def turn(self, slot: int) -> Reading:
        return self.browsers[slot].turn(self.chats[slot])


def added_latency(consoles: list[Chats], api: str, raw: str, rounds: int) -> bool:
    """Interleaved: each round reads the direct streams, then each console's (the current one
    and, with --before, the earlier one), in turn, so all see the same load on the machine."""
    upstream = [Direct(api, raw) for _ in range(max(LEVELS))]
    for slot in range(max(LEVELS)):  # warm every path: pooled connections, imports, caches
        upstream[slot].turn()  # the console's chat began with a turn of its own (new_chat)
        upstream[slot].turn()
        for console in consoles:
            console.turn(slot)
    ok = True
    for level in LEVELS:
        straight: list[Reading] = []
        relayed: list[list[Reading]] = [[] for _ in consoles]
        for round_number in range(rounds):
            straight += at_once(level, lambda slot: upstream[slot].turn())
            order = list(range(len(consoles)))
            for index in order[round_number % len(order) :] + order[: round_number % len(order)]:
                relayed[index] += at_once(level, consoles[index].turn)
        ok &= report_level(level, straight, relayed[0], "now")
        if len(consoles) > 1:
            report_level(level, straight, relayed[1], "before")
            print(f"  now/before added ttft p50: {compare(straight, relayed)}")
    return ok


def compare(straight: list[Reading], relayed: list[list[Reading]]) -> str:
    direct_ttft = statistics.median([r.ttft for r in straight])
    now, before = (statistics.median([r.ttft for r in readings]) for readings in relayed)
    return f"{now - direct_ttft:+.1f} / {before - direct_ttft:+.1f} ms"


def report_level(level: int, straight: list[Reading], relayed: list[Reading], name: str) -> bool:
    figures = {}
    label = name
    for name, pick in (("ttft", lambda r: r.ttft), ("total", lambda r: r.total)):
        direct_values = [pick(r) for r in straight]
        console_values = [pick(r) for r in relayed]
        figures[name] = (
            statistics.median(console_values) - statistics.median(direct_values),
            p95(console_values) - p95(direct_values),
        )
        ratio = statistics.median(console_values) / statistics.median(direct_values)
        print(
            f"{label} {level} stream(s) {name:5}: direct p50"
            f" {statistics.median(direct_values):7.1f} ms"
            f" p95 {p95(direct_values):7.1f} | console p50 {statistics.median(console_values):7.1f}"
            f" p95 {p95(console_values):7.1f} | added p50 {figures[name][0]:+6.1f}"
            f" p95 {figures[name][1]:+6.1f} ms | ratio p50 {ratio:.2f}"
        )
    timed = [r for r in relayed if r.reader_ttft]
    reader = statistics.median([r.reader_ttft for r in timed]) if timed else float("nan")
    upstream = statistics.median([r.ttft for r in straight])
    print(
        f"  where it goes (p50): send request {statistics.median([r.send for r in relayed]):.1f}"
        f" ms (in Django {statistics.median([r.send_server for r in relayed]):.1f}); reader's own"
        f" first token {reader:.1f} ms ({reader - upstream:+.1f} over direct); event stream"
        f" open to first byte {statistics.median([r.opened for r in relayed]):.1f} ms"
    )
    return (
        figures["ttft"][0] <= TARGET_ADDED_TTFT_P50
        and figures["ttft"][1] <= TARGET_ADDED_TTFT_P95
        and figures["total"][0] <= TARGET_ADDED_TOTAL
        and all(r.finished for r in relayed)
    )


def load(console: str, setup: dict, seconds: float, slow_tokens: Callable[[], object]) -> bool:
    browsers = [Browser(console, setup["cookie"], setup["key"]) for _ in range(LOAD_STREAMS)]
    # The chats exist (first replies read to the end) before the clock starts.
    chats = [browser.new_chat()[0] for browser in browsers]
    slow_tokens()
    pages: list[float] = []
    stop = threading.Event()

    def keep_opening_pages() -> None:
        http = browsers[0].http
        while not stop.is_set():
            started = time.perf_counter()
            http.get(console + "/chat/", timeout=TIMEOUT).raise_for_status()
            pages.append((time.perf_counter() - started) * 1000)
            time.sleep(0.1)

    watcher = threading.Thread(target=keep_opening_pages)
    watcher.start()
    readings: list[Reading] = []
    deadline = time.monotonic() + seconds
    try:
        while True:
            readings += at_once(LOAD_STREAMS, lambda slot: browsers[slot].turn(chats[slot]))
            if time.monotonic() >= deadline:
                break
    finally:
        stop.set()
        watcher.join()
    timed = [r for r in readings if r.ttft]
    first_bytes = [r.first_byte for r in timed]
    stalls = sum(r.max_gap > STALL_SECONDS * 1000 for r in readings)
    unfinished = sum(not r.finished for r in readings)
    print(
        f"{LOAD_STREAMS} at once x {len(readings) // LOAD_STREAMS} wave(s): stream first byte "
        f"p50 {statistics.median(first_bytes):.0f} ms p95 {p95(first_bytes):.0f} ms; time to "
        f"first token p95 {p95([r.ttft for r in timed]):.0f} ms; longest gap "
        f"{max(r.max_gap for r in readings):.0f} ms; stalls {stalls}; unfinished {unfinished}; "
        f"chat page p95 {p95(pages):.0f} ms over {len(pages)} loads"
    )
    return (
        p95(first_bytes) < TARGET_FIRST_BYTE_P95
        and stalls == 0
        and unfinished == 0
        and p95(pages) < TARGET_PAGE_P95
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-db", action="store_true", help="one data dir for both servers")
    parser.add_argument(
        "--before",
        type=Path,
        help="a checkout of earlier code (git worktree or git archive) to measure interleaved",
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32)
    args = parser.parse_args()
    with servers(args.workers, args.threads, args.shared_db, args.before) as started:
        console, sandbox, *before = started
        api = f"{sandbox.url}/sandbox/api/v1"
        raw = manage("shell", "-c", SANDBOX_SETUP, env=sandbox.env).strip().splitlines()[-1]
        setups, consoles = [], []
        for server in [console, *before]:
            script = SETUP.format(upstream=api, raw=raw)
            output = manage("shell", "-c", script, env=server.env, root=server.root)
            setups.append(json.loads(output.strip().splitlines()[-1]))
            consoles.append(Chats(server.url, setups[-1]))
        latency_ok = added_latency(consoles, api, raw, args.rounds)
        script = DELAY_SCRIPT.format(ms=LOAD_TOKEN_DELAY_MS)
        slow = lambda: manage("shell", "-c", script, env=sandbox.env)  # noqa: E731
        load_ok = load(console.url, setups[0], args.seconds, slow)
    verdict = "PASS" if latency_ok and load_ok else "FAIL"
    database = "one shared data dir" if args.shared_db else "separate data dirs"
    print(
        f"{verdict} ({database}): relay added ttft within "
        f"{TARGET_ADDED_TTFT_P50:g}/{TARGET_ADDED_TTFT_P95:g} ms"
        f" p50/p95 and total within {TARGET_ADDED_TOTAL:g} ms: {latency_ok}; "
        f"{LOAD_STREAMS} streams first byte p95 < {TARGET_FIRST_BYTE_P95:g} ms, no stalls, "
        f"pages answer: {load_ok}"
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
