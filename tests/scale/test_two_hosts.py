"""Two hosts on one PostgreSQL database, as the README's production section describes.

Two `serve --no-worker` processes on two ports (hosts A and B) and two `worker` processes
share one database of their own, one data directory (the media cache) and the same SECRET_KEY
and keyring. Everything goes through real HTTP. It runs in CI's PostgreSQL pass (DATABASE_URL
names a PostgreSQL server), where it makes and drops its own database.
"""

import base64
import contextlib
import http.client
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import requests

from rivya_dashboard.rivya import signing
from tests.conftest import PASSWORD, subprocess_env
from tests.served import (
    ROOT,
    ManagedConsole,
    database_url,
    descendants,
    free_port,
    make_member,
    own_postgres_database,
    post_confirmed,
    shared_key,
    sign_in,
    submit_generation,
    wait_for,
)

POSTGRES = os.environ.get("DATABASE_URL", "")
pytestmark = pytest.mark.skipif(
    not POSTGRES.startswith("postgres"),
    reason="runs in the PostgreSQL pass of CI: two hosts need one shared database server",
)
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"two-hosts-signing-secret-32bytes").decode()


@dataclass
class Cluster(ManagedConsole):
    database: str
    hosts: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, *command: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def start_host(self, name: str, port: int) -> None:
        self.start(name, "serve", "--no-worker", "--port", str(port), "--workers", "2")
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/healthz", timeout=5).status_code == 200:
                    self.hosts[name] = url
                    return
            except requests.RequestException:
                time.sleep(0.3)
        raise AssertionError(f"host {name} did not start")

    def query(self, sql: str, *params: object) -> list[tuple]:
        with psycopg.connect(database_url(POSTGRES, self.database)) as connection:
            return connection.execute(sql, params).fetchall()

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    ports = {"A": free_port(), "B": free_port()}
    with own_postgres_database(POSTGRES, "rivya_hosts_") as name:
        env = subprocess_env(
            # Host A stands for the address a proxy would give both: its sandbox is the console's.
            RIVYA_PUBLIC_URL=f"http://127.0.0.1:{ports['A']}",
            DATABASE_URL=database_url(POSTGRES, name),
            RIVYA_DATA_DIR=str(tmp_path_factory.mktemp("shared-data")),
            SECRET_KEY=secrets.token_urlsafe(48),
            RIVYA_KEYRING="k0a1b2c3d:" + base64.urlsafe_b64encode(os.urandom(32)).decode(),
            RIVYA_MFA_REQUIRED="0",
            RIVYA_DEBUG="0",
            RIVYA_LOG_LEVEL="WARNING",
            RIVYA_POLL_SPEED="10",
            # The flood below is the test's own sender: the per-inbox limits are not measured.
            RIVYA_INBOX_RATE_PER_MINUTE="1000000",
            RIVYA_INBOX_MAX_REQUESTS="1000000",
        )
        cluster = Cluster(env, database=name)
        cluster.manage("migrate", "--verbosity=0")
        cluster.manage("collectstatic", "--noinput", "--verbosity=0")
        try:
            cluster.start_host("A", ports["A"])
            cluster.start_host("B", ports["B"])
            for worker in ("w1", "w2"):
                cluster.start(
                    worker, "worker", "--no-reload", "--worker-id", worker, "--interval", "0.2"
                )
            yield cluster
        finally:
            cluster.stop_all()


def test_a_member_signed_in_on_a_is_signed_in_on_b(cluster):
    make_member(cluster, "ada", "owner")
    session = sign_in(cluster.hosts["A"], "ada")

    on_b = session.get(cluster.hosts["B"] + "/", allow_redirects=False)

    assert on_b.status_code == 200
    assert "ada" in on_b.text


def test_an_invitation_made_on_a_is_accepted_on_b(cluster):
    make_member(cluster, "olga", "owner")
    owner = sign_in(cluster.hosts["A"], "olga")
    owner.get(cluster.hosts["A"] + "/accounts/team/")
    made = post_confirmed(
        owner,
        cluster.hosts["A"],
        "/accounts/team/invites/",
        {"email": "bo@example.test", "role": "operator", "days": "7"},
    )
    found = re.search(r'value="(http[^"]*/invite/[^"]+)"', made.text)
    assert found, (made.status_code, made.url, re.findall(r"<h1>(.*?)</h1>", made.text))
    link = found.group(1)
    path = urlsplit(link).path

    invitee = requests.Session()
    invitee.get(cluster.hosts["B"] + path)
    accepted = invitee.post(
        cluster.hosts["B"] + path,
        data={
            "username": "bo",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "csrfmiddlewaretoken": invitee.cookies["csrftoken"],
        },
        headers={"Referer": cluster.hosts["B"] + path},
    )

    assert accepted.status_code == 200 and "/invite/" not in accepted.url
    assert sign_in(cluster.hosts["A"], "bo").get(cluster.hosts["A"] + "/").status_code == 200


def make_inbox(cluster: Cluster) -> str:
    out = cluster.manage(
        "shell",
        "-c",
        "from rivya_dashboard.webhooks import inboxes; "
        "inbox = inboxes.do_create_inbox(None, name='Shared', key=None); "
        f"inboxes.do_add_secret(None, inbox, {WEBHOOK_SECRET!r}); print(inbox.token)",
    )
    return out.strip().splitlines()[-1]


@dataclass
class Flood:
    sent: set[str] = field(default_factory=set)
    # The same ids in the order sent, to pick duplicates from without sorting the set each time.
    order: list[str] = field(default_factory=list)
    acked: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def deliver(connections: dict, cluster: Cluster, host: str, token: str, body: str, headers: dict):
    """POST one delivery; a keep-alive connection the server closed is reopened and the same
    delivery sent again once, as a webhook sender retries."""
    for attempt in (1, 2):
        try:
            connections[host].request(
                "POST",
                f"/hooks/{token}/",
                body=body,
                headers={**headers, "Content-Type": "application/json"},
            )
            answer = connections[host].getresponse()
            answer.read()
            return answer
        except OSError:
            connections[host].close()
            connections[host] = http.client.HTTPConnection(
                "127.0.0.1", urlsplit(cluster.hosts[host]).port, timeout=30
            )
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def test_webhooks_to_both_hosts_are_stored_exactly_once(cluster):
    token = make_inbox(cluster)
    flood, seconds, senders = Flood(), 30.0, 16
    deadline = time.monotonic() + seconds

    def sender(number: int) -> None:
        connections = {
            name: http.client.HTTPConnection("127.0.0.1", urlsplit(url).port, timeout=30)
            for name, url in cluster.hosts.items()
        }
        count = 0
        while time.monotonic() < deadline:
            count += 1
            host = "AB"[count % 2]
            with flood.lock:
                if flood.order and count % 10 == 0:
                    event_id = flood.order[count % len(flood.order)]
                else:
                    event_id = f"evt_{number}_{count}"
                    flood.order.append(event_id)
                flood.sent.add(event_id)
            body = json.dumps({"id": event_id, "type": "generation.succeeded", "data": {}})
            headers = signing.sign(
                WEBHOOK_SECRET, body.encode(), msg_id=event_id, timestamp=int(time.time())
            )
            try:
                answer = deliver(connections, cluster, host, token, body, headers)
            except OSError as error:
                with flood.lock:
                    flood.failures.append(f"{host}: {error}")
                continue
            with flood.lock:
                flood.requests += 1
                if answer.status == 200:
                    flood.acked.add(event_id)
                else:
                    flood.failures.append(f"{host}: {answer.status}")

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stored = json.loads(
        cluster.manage(
            "shell",
            "-c",
            "import json; from django.db.models import Count; "
            "from rivya_dashboard.webhooks.models import InboxRequest; "
            "rows = InboxRequest.objects.filter(inbox__token="
            f"{token!r}).values('event_id').annotate(n=Count('id')); "
            "print(json.dumps({r['event_id']: r['n'] for r in rows}))",
        )
        .strip()
        .splitlines()[-1]
    )
    rate = flood.requests / seconds
    print(
        f"two hosts: {flood.requests} deliveries in {seconds:.0f} s ({rate:.0f}/s), "
        f"{len(flood.sent)} distinct events, {len(stored)} stored, {len(flood.failures)} failed"
    )
    assert flood.failures == []
    assert set(stored) == flood.sent == flood.acked
    assert set(stored.values()) == {1}


def kill_tree(pid: int) -> None:
    """A host lost at once, as in a power cut: no process of it gets to finish anything (serve's
    children would otherwise stop gracefully when serve dies)."""
    for process in [*descendants(pid), pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process, signal.SIGKILL)


def test_a_worker_killed_mid_poll_leaves_the_job_to_the_other(cluster):
    make_member(cluster, "gus", "owner")
    key_id = shared_key(cluster, '{"latency": 4000}')
    owner = sign_in(cluster.hosts["A"], "gus")
    submit_generation(owner, cluster.hosts["A"], key_id, "A harbour at night")

    running = (
        "SELECT worker_ids FROM django_tasks_database_dbtaskresult "
        "WHERE status = 'RUNNING' AND task_path LIKE '%%poll_generation'"
    )
    wait_for(lambda: cluster.query(running), 60, "a poll starting")
    (worker_ids,) = cluster.query(running)[0]
    victim = worker_ids[-1]
    os.killpg(cluster.processes[victim].pid, signal.SIGKILL)
    cluster.manage(
        "shell",
        "-c",
        "from rivya_dashboard.sandbox.faults import set_global_faults; set_global_faults({})",
    )

    status = "SELECT status FROM console_generation"
    wait_for(lambda: cluster.query(status) == [("succeeded",)], 120, "the other worker finishing")
    charges = cluster.query(
        "SELECT credits_final FROM vault_ledgerentry WHERE operation = 'generations.create'"
    )
    outputs = cluster.query("SELECT cached_name FROM console_output WHERE cached_name <> ''")
    print(
        f"two hosts: worker {victim} killed mid-poll; job finished by the other with "
        f"{len(charges)} charge(s) and {len(outputs)} cached output(s)"
    )
    assert len(charges) == 1 and charges[0][0] is not None
    assert len(outputs) == len({name for (name,) in outputs}) >= 1
    media = Path(cluster.env["RIVYA_DATA_DIR"]) / "media" / "outputs"
    assert sorted(path.name for path in media.iterdir()) == sorted(name for (name,) in outputs)


def sse_events(response: requests.Response) -> Iterator[tuple[str, str]]:
    """(event, data) as a text/event-stream arrives."""
    event = data = ""
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and event:
            yield event, data
            event = data = ""


def reply_started_on_a(cluster: Cluster, username: str, delay_ms: int, message: str) -> tuple:
    """A chat reply started on host A, words every delay_ms; a session for host B and its turn."""
    make_member(cluster, username, "owner")
    key_id = shared_key(cluster, "{}")
    cluster.manage(
        "shell",
        "-c",
        "from rivya_dashboard.sandbox.models import SandboxSettings; "
        f"SandboxSettings.objects.update(token_delay_ms={delay_ms})",
    )
    on_a = sign_in(cluster.hosts["A"], username)
    on_a.get(cluster.hosts["A"] + "/chat/")
    started = post_confirmed(
        on_a,
        cluster.hosts["A"],
        "/chat/new",
        {
            "key": key_id,
            "model": "gpt-5-2-chat",
            "idempotency_key": f"two-hosts-{username}",
            "message": message,
        },
    )
    assert started.status_code == 200, started.status_code
    (turn_id,) = cluster.query("SELECT max(id) FROM chat_chatturn")[0]
    on_b = requests.Session()
    on_b.cookies.update(on_a.cookies)
    return on_b, turn_id


def test_a_reply_started_on_a_is_followed_and_stopped_from_b(cluster):
    on_b, turn_id = reply_started_on_a(
        cluster, "cleo", 150, "Tell me a long story about two lighthouses"
    )
    stream = on_b.get(f"{cluster.hosts['B']}/chat/turns/{turn_id}/stream", stream=True, timeout=30)
    seen, events = [], sse_events(stream)
    for event, _data in events:
        seen.append(event)
        if event == "delta" and seen.count("delta") >= 3:
            break
    stopped_at = time.monotonic()
    stop = on_b.post(
        f"{cluster.hosts['B']}/chat/turns/{turn_id}/stop",
        data={"csrfmiddlewaretoken": on_b.cookies["csrftoken"]},
        headers={"Referer": cluster.hosts["B"] + "/chat/"},
    )
    assert stop.status_code in (200, 302), stop.status_code
    ends = [event for event, _data in events]
    ended_in = time.monotonic() - stopped_at
    stream.close()
    (status, reply, reserved) = cluster.query(
        "SELECT status, reply, credits_reserved FROM chat_chatturn WHERE id = %s", turn_id
    )[0]
    print(
        f"two hosts: reply started on A, followed on B ({seen.count('delta')} deltas), "
        f"stopped from B; the stream ended {ended_in:.2f} s later as {status}"
    )
    assert status == "stopped"
    assert reply and reserved is not None
    assert ends and ends[-1] in ("stopped", "done")


def test_a_host_killed_while_streaming_leaves_the_reply_interrupted(cluster):
    """Last: it kills host A. The reader on A dies with it; B, following the reply, ends it as
    interrupted once its heartbeat is stale (chat/relay.py STALE_SECONDS), keeping the words."""
    on_b, turn_id = reply_started_on_a(
        cluster, "kim", 400, "Tell me a very long story about a storm"
    )
    stream = on_b.get(f"{cluster.hosts['B']}/chat/turns/{turn_id}/stream", stream=True, timeout=90)
    events = sse_events(stream)
    for event, _data in events:
        if event == "delta":
            break
    killed_at = time.monotonic()
    kill_tree(cluster.processes["A"].pid)
    ends = [event for event, _data in events]
    ended_in = time.monotonic() - killed_at
    stream.close()
    (status, code, reply) = cluster.query(
        "SELECT status, error_code, reply FROM chat_chatturn WHERE id = %s", turn_id
    )[0]
    print(
        f"two hosts: host A killed mid-reply; B ended the reply {ended_in:.1f} s later as "
        f"{status} ({code}), keeping {len(reply)} characters"
    )
    assert ends and ends[-1] == "error"
    assert (status, code) == ("failed", "console_restarted")
    assert reply
