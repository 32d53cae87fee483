"""A console run as a person runs it, in processes of its own, and what a member does to it over
real HTTP: sign in, post a form (confirming the password when asked), read the generate form.

Shared by the tests of `serve`, backups, two hosts and faults, which all reach a console only
through its port, its `manage.py` and its database.
"""

import contextlib
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import requests

from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 25.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.geturl(), response.read().decode()


def wait_for(condition: Callable[[], object], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {seconds:.0f} s")


class Served:
    """A running `serve` whose merged output is collected line by line."""

    def __init__(
        self, port: int, data_dir: Path, env: dict[str, str], *options: str, cwd: Path = ROOT
    ) -> None:
        self.port = port
        self.data_dir = data_dir
        self.lines: list[str] = []
        self.changed = threading.Condition()
        command = [sys.executable, str(ROOT / "manage.py"), "serve", "--port", str(port)]
        self.process = subprocess.Popen(
            [*command, "--workers", "1", *options],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()

    def output(self) -> str:
        with self.changed:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, *, count: int = 1, timeout: float = 10.0) -> list[str]:
        """Wait until `pattern` has matched `count` lines; return the last match's groups."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                matches = [m for line in self.lines if (m := re.search(pattern, line))]
                if len(matches) >= count:
                    return list(matches[count - 1].groups())
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise AssertionError(f"{pattern!r} not seen; output:\n" + "\n".join(self.lines))
                self.changed.wait(min(left, 0.2))

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if get(self.url("/healthz"))[0] == 200:
                    return
            except OSError:
                pass
            assert self.process.poll() is None, self.output()
            time.sleep(0.1)
        raise AssertionError("/healthz never answered 200; output:\n" + self.output())

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()

    def child_pids(self) -> set[int]:
        pids = re.findall(r"started \(pid (\d+)\)|Booting worker with pid: (\d+)", self.output())
        return {int(a or b) for a, b in pids}


@dataclass
class ManagedConsole:
    """A console reached through its `manage.py`, with the environment its processes share."""

    env: dict[str, str]

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.manage_env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def manage_env(self) -> dict[str, str]:
        return self.env


def make_member(console: ManagedConsole, username: str, role: str) -> None:
    console.manage(
        "shell",
        "-c",
        "from rivya_dashboard.accounts.models import User; "
        f"User.objects.create_user({username!r}, {username + '@example.test'!r}, "
        f"{PASSWORD!r}, role={role!r})",
    )


SETUP_KEY = """
from rivya_dashboard.console.models_catalog import do_store_catalogue
from rivya_dashboard.sandbox.faults import set_global_faults
from rivya_dashboard.sandbox.keys import issue_key
from rivya_dashboard.sandbox.models import SandboxSettings
from rivya_dashboard.vault.models import ApiKey
from django.conf import settings
SandboxSettings.load(); SandboxSettings.objects.update(clock_speed=5)
key = ApiKey.objects.filter(label="Shared sandbox").first()
if key is None:
    key = ApiKey.objects.create(label="Shared sandbox", environment="sandbox",
        base_url=settings.RIVYA_PUBLIC_URL + "/sandbox/api/v1")
    key.store_secret(issue_key(credits=100000)); key.save(update_fields=["secret", "last4"])
    do_store_catalogue(key.client().list_models())
set_global_faults(FAULTS)
print(key.pk)
"""


def shared_key(console: ManagedConsole, faults: str) -> str:
    """The sandbox key every scenario shares (made once), with these sandbox faults set."""
    out = console.manage("shell", "-c", SETUP_KEY.replace("FAULTS", faults))
    return out.strip().splitlines()[-1]


def sign_in(host: str, username: str) -> requests.Session:
    session = requests.Session()
    session.get(host + "/accounts/login/")
    answer = session.post(
        host + "/accounts/login/",
        data={
            "username": username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": host + "/accounts/login/"},
    )
    assert answer.status_code == 200 and "/accounts/login/" not in answer.url, answer.url
    return session


def post_confirmed(
    session: requests.Session, host: str, path: str, data: dict
) -> requests.Response:
    """POST a form; when the action is a sensitive one, confirm the password as a person would."""
    csrf = {"csrfmiddlewaretoken": session.cookies["csrftoken"]}
    referer = {"Referer": host + path}
    answer = session.post(host + path, data={**data, **csrf}, headers=referer)
    if 'name="_reauth_password"' not in answer.text:
        return answer
    action = re.search(r'<form method="post" action="([^"]+)"', answer.text).group(1)
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', answer.text))
    hidden.update({**csrf, "_reauth_password": PASSWORD})
    return session.post(host + action, data=hidden, headers=referer)


SKIPPED = ("checkbox", "radio", "file", "submit")


class FormFields(HTMLParser):
    """The fields a browser would send from the form marked data-generate-form."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.fields: dict[str, str] = {}
        self.select: str | None = None
        self.action = ""

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if tag == "form" and "data-generate-form" in attributes:
            self.inside, self.action = True, attributes["action"]
        if not self.inside:
            return
        if tag == "option" and self.select:
            # The selected option, else the first one, as a browser sends.
            if "selected" in attributes or self.select not in self.fields:
                self.fields[self.select] = attributes.get("value", "")
        elif tag == "select" and "name" in attributes:
            self.select = attributes["name"]
        elif tag == "input" and "name" in attributes and attributes.get("type", "") not in SKIPPED:
            self.fields[attributes["name"]] = attributes.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self.select = None
        if tag == "form":
            self.inside = False


def submit_generation(session: requests.Session, host: str, key_id: str, prompt: str) -> str:
    """Submit the generate form as a browser would; the job's page address."""
    page = session.get(f"{host}/generate/?model=z-image&key={key_id}")
    form = FormFields()
    form.feed(page.text)
    form.fields["prompt"] = prompt
    submitted = post_confirmed(session, host, form.action, form.fields)
    assert submitted.status_code == 200 and "/generations/" in submitted.url, submitted.url
    return submitted.url


def descendants(pid: int) -> list[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        children = parents.get(queue.pop(), [])
        found += children
        queue += children
    return found


def database_url(server_url: str, name: str, *, port: int | None = None) -> str:
    """The URL of database `name` on the server of `server_url`, through another port if given."""
    parts = urlsplit(server_url)
    if port is not None:
        credentials, _at, _address = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{credentials}{_at}{parts.hostname}:{port}")
    return parts._replace(path="/" + name).geturl()


@contextlib.contextmanager
def own_postgres_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new database on the PostgreSQL server of `server_url` for one test module, dropped after
    (with any connection a killed console left behind)."""
    name = prefix + secrets.token_hex(4)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))
