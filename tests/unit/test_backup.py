"""Backups that restore: a console in use is backed up, restored into a new data directory (and,
on PostgreSQL, a new database), started, and found whole: members, keys (decrypted with the
restored keyring), jobs, outputs (byte for byte), chats and inbox requests. Each console runs as
a person runs it, in processes of its own.

Every test runs once per engine: on SQLite in CI's SQLite pass, and on PostgreSQL (pg_dump and
pg_restore) in its PostgreSQL pass, where each console gets a database of its own, dropped after.
"""

import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from rivya_dashboard.console.backup import pg_environment
from tests.conftest import OWN_SQLITE_ONLY, subprocess_env
from tests.scale.test_two_hosts import POSTGRES
from tests.served import ROOT, database_url, free_port

RAW_KEY = "rvya_sk_" + "b" * 40
PASSPHRASE = "correct horse battery staple"

ENGINES = [
    pytest.param("sqlite", marks=OWN_SQLITE_ONLY),
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not POSTGRES.startswith("postgres"),
            reason="backs up with pg_dump in CI's PostgreSQL pass; the SQLite pass covers SQLite",
        ),
    ),
]
DATABASE_FILES = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}

POPULATE = f"""
from pathlib import Path
from django.conf import settings
from rivya_dashboard.accounts.models import User
from rivya_dashboard.chat.models import ChatSession, ChatTurn
from rivya_dashboard.console.models import Generation, Output
from rivya_dashboard.vault.models import ApiKey
from rivya_dashboard.webhooks.models import Inbox, InboxRequest
owner = User.objects.create_user("ada", "ada@example.test", "pw-12345678-x", role="owner")
User.objects.create_user("opal", "opal@example.test", "pw-12345678-x", role="operator")
key = ApiKey.objects.create(label="Prod", base_url="https://rivya.ai/api/v1", added_by=owner)
key.store_secret({RAW_KEY!r})
key.save(update_fields=["secret", "last4"])
job = Generation.objects.create(member=owner, member_name="ada", key=key, key_label="Prod",
    model_id="z-image", prompt="harbour", idempotency_key="b-1", status="succeeded")
outputs = Path(settings.MEDIA_ROOT) / "outputs"
outputs.mkdir(parents=True, exist_ok=True)
(outputs / "b-1.png").write_bytes(b"png bytes of the harbour")
Output.objects.create(generation=job, position=0, original_url="https://cdn.example/1.png",
    cached_name="b-1.png", content_type="image/png", size_bytes=24)
chat = ChatSession.objects.create(created_by=owner, api_key=key, key_label="Prod",
    model="gpt-5-2-chat", title="Lighthouses")
ChatTurn.objects.create(session=chat, created_by=owner, message="hi", model="gpt-5-2-chat",
    reply="hello", status="done")
inbox = Inbox.objects.create(name="Local", key=key)
InboxRequest.objects.create(inbox=inbox, method="POST", body=b"{{}}", verdict="verified",
    response_status=200)
"""

INSPECT = f"""
import hashlib
import json
from pathlib import Path
from django.conf import settings
from rivya_dashboard.accounts.models import User
from rivya_dashboard.chat.models import ChatTurn
from rivya_dashboard.console.models import Generation, Output
from rivya_dashboard.vault.models import ApiKey
from rivya_dashboard.webhooks.models import InboxRequest
media = Path(settings.MEDIA_ROOT)
print(json.dumps({{
    "members": sorted(User.objects.values_list("username", flat=True)),
    "key": ApiKey.objects.get().reveal() == {RAW_KEY!r},
    "jobs": list(Generation.objects.values_list("prompt", flat=True)),
    "outputs": {{
        output.cached_name: hashlib.sha256(
            (media / "outputs" / output.cached_name).read_bytes()
        ).hexdigest()
        for output in Output.objects.all()
    }},
    "chat": list(ChatTurn.objects.values_list("reply", flat=True)),
    "inbox": InboxRequest.objects.count(),
}}))
"""


@dataclass
class Console:
    """A console's data directory and, on PostgreSQL, its own database."""

    data_dir: Path
    database: str = ""

    def manage(self, *args: str, stdin: str | None = None, **env: str):
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env(**env),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def env(self, **overrides: str) -> dict[str, str]:
        own = {"RIVYA_DATA_DIR": str(self.data_dir), "RIVYA_DEBUG": "0"}
        if self.database:
            own["DATABASE_URL"] = database_url(POSTGRES, self.database)
        return subprocess_env(**own, **overrides)

    def start(self) -> subprocess.Popen:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--no-worker", "--port", str(port)],
            cwd=ROOT,
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as got:
                    if got.status == 200:
                        return process
            except OSError:
                time.sleep(0.3)
        process.terminate()
        raise AssertionError("the console did not start")

    def holds_a_database(self) -> bool:
        if not self.database:
            return (self.data_dir / "rivya.sqlite3").exists()
        with psycopg.connect(database_url(POSTGRES, self.database)) as connection:
            tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            return connection.execute(tables).fetchone()[0] > 0


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=30)


def test_the_database_settings_reach_pg_tools_through_the_environment(monkeypatch):
    for name in [name for name in os.environ if name.startswith("PG")]:
        monkeypatch.delenv(name)
    setting = {
        "NAME": "console",
        "USER": "rivya",
        "PASSWORD": "s3cret",
        "HOST": "db.internal",
        "PORT": 5433,
        "OPTIONS": {"sslmode": "verify-full", "sslrootcert": "/etc/ca.pem"},
    }
    env = pg_environment(setting)
    assert {name: env[name] for name in env if name.startswith("PG")} == {
        "PGDATABASE": "console",
        "PGUSER": "rivya",
        "PGPASSWORD": "s3cret",
        "PGHOST": "db.internal",
        "PGPORT": "5433",
        "PGSSLMODE": "verify-full",
        "PGSSLROOTCERT": "/etc/ca.pem",
    }
    assert "PGUSER" not in pg_environment({"NAME": "console", "USER": ""})


def checksums(directory: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.iterdir())
    }


@pytest.fixture(scope="module", params=ENGINES)
def engine(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def new_console(engine, tmp_path_factory) -> Iterator[Callable[[str], Console]]:
    """Makes consoles with a new data directory, and on PostgreSQL a new empty database."""
    databases: list[str] = []

    def make(name: str) -> Console:
        data_dir = tmp_path_factory.mktemp(name) / "data"
        if engine == "sqlite":
            return Console(data_dir)
        database = f"rivya_backup_{secrets.token_hex(4)}"
        with psycopg.connect(POSTGRES, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}"')
        databases.append(database)
        return Console(data_dir, database)

    yield make
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        for database in databases:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture(scope="module")
def backed_up(new_console, tmp_path_factory) -> tuple[Console, Path]:
    original = new_console("original")
    server = original.start()
    try:
        populated = original.manage("shell", "-c", POPULATE)
        assert populated.returncode == 0, populated.stderr
        backup_dir = tmp_path_factory.mktemp("backups") / "monday"
        made = original.manage(
            "backup", str(backup_dir), "--with-secrets", RIVYA_BACKUP_PASSPHRASE=PASSPHRASE
        )
    finally:
        stop(server)
    assert made.returncode == 0, made.stderr
    return original, backup_dir


def test_a_backup_restores_into_a_new_console_and_starts(backed_up, new_console):
    original, backup_dir = backed_up
    restored = new_console("restored")

    done = restored.manage(
        "restore", str(backup_dir), "--with-secrets", RIVYA_BACKUP_PASSPHRASE=PASSPHRASE
    )
    assert done.returncode == 0, done.stderr
    stop(restored.start())
    found = restored.manage("shell", "-c", INSPECT)

    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout.strip().splitlines()[-1]) == {
        "members": ["ada", "opal"],
        "key": True,
        "jobs": ["harbour"],
        "outputs": checksums(original.data_dir / "media" / "outputs"),
        "chat": ["hello"],
        "inbox": 1,
    }


def test_the_manifest_counts_rows_and_checks_every_file(backed_up, engine):
    _, backup_dir = backed_up
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["engine"] == engine
    assert manifest["rows"]["accounts.User"] == 2
    assert manifest["rows"]["console.Output"] == 1
    assert set(manifest["files"]) == {
        DATABASE_FILES[engine],
        "media/outputs/b-1.png",
        "secrets.enc",
    }
    assert manifest["secrets"] is True


def test_secrets_are_encrypted_and_never_in_a_plain_backup(backed_up, engine, tmp_path):
    original, backup_dir = backed_up
    sealed = (backup_dir / "secrets.enc").read_text()
    keyring = (original.data_dir / "keyring").read_text().strip()
    assert keyring.split(":")[1] not in sealed
    database = (backup_dir / DATABASE_FILES[engine]).read_bytes()
    assert RAW_KEY not in database.decode("latin-1")
    plain = tmp_path / "plain"
    assert original.manage("backup", str(plain)).returncode == 0
    assert not (plain / "secrets.enc").exists()


def test_restore_refuses_a_data_directory_in_use(backed_up):
    original, backup_dir = backed_up
    refused = original.manage(
        "restore", str(backup_dir), "--with-secrets", RIVYA_BACKUP_PASSPHRASE=PASSPHRASE
    )
    assert refused.returncode != 0
    assert "already holds a console" in refused.stderr


def postgresql_only(engine: str) -> None:
    if engine == "sqlite":
        pytest.skip("a SQLite console's database is a file of its data directory: no pg tools")


def test_restore_refuses_a_database_in_use(backed_up, engine, tmp_path):
    postgresql_only(engine)
    original, backup_dir = backed_up
    onto_the_original = Console(tmp_path / "new-data", original.database)

    refused = onto_the_original.manage(
        "restore", str(backup_dir), "--with-secrets", RIVYA_BACKUP_PASSPHRASE=PASSPHRASE
    )

    assert refused.returncode != 0
    assert f"database {original.database} already has tables" in refused.stderr
    assert not (tmp_path / "new-data" / "keyring").exists()
    assert not (tmp_path / "new-data" / "media").exists()


def fake_pg_tools(directory: Path, version: str) -> str:
    """A PATH on which pg_dump and pg_restore are of another PostgreSQL release."""
    directory.mkdir()
    for tool in ("pg_dump", "pg_restore"):
        script = directory / tool
        script.write_text(f"#!/bin/sh\necho '{tool} (PostgreSQL) {version}'\n")
        script.chmod(0o755)
    return str(directory)


def test_backup_names_the_client_tools_it_needs(backed_up, engine, tmp_path):
    postgresql_only(engine)
    original, _ = backed_up

    missing = original.manage("backup", str(tmp_path / "a"), PATH=str(tmp_path))
    too_old = original.manage(
        "backup", str(tmp_path / "b"), PATH=fake_pg_tools(tmp_path / "bin", "9.6.24")
    )

    assert missing.returncode != 0 and "pg_dump is not installed" in missing.stderr
    assert too_old.returncode != 0
    assert "pg_dump is from PostgreSQL 9 but the server runs PostgreSQL" in too_old.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_backup_from_a_newer_pg_dump_is_named_as_such(backed_up, engine, new_console, tmp_path):
    postgresql_only(engine)
    _, backup_dir = backed_up
    newer = tmp_path / "newer"
    subprocess.run(["cp", "-r", str(backup_dir), str(newer)], check=True)
    dump = newer / "database.pgdump"
    header = bytearray(dump.read_bytes())
    header[6] = 99  # the archive format's minor version, after "PGDMP" and the major version
    dump.write_bytes(bytes(header))
    manifest = json.loads((newer / "manifest.json").read_text())
    manifest["files"]["database.pgdump"] = hashlib.sha256(bytes(header)).hexdigest()
    (newer / "manifest.json").write_text(json.dumps(manifest))
    target = new_console("target-of-newer")

    refused = target.manage(
        "restore", str(newer), "--with-secrets", RIVYA_BACKUP_PASSPHRASE=PASSPHRASE
    )

    assert refused.returncode != 0
    assert "written by a newer pg_dump" in refused.stderr
    assert not target.holds_a_database()


def test_restore_refuses_a_wrong_passphrase_and_a_damaged_backup(backed_up, new_console, tmp_path):
    _, backup_dir = backed_up
    target = new_console("target")
    wrong = target.manage(
        "restore",
        str(backup_dir),
        "--with-secrets",
        RIVYA_BACKUP_PASSPHRASE="not the right passphrase",
    )
    assert wrong.returncode != 0 and "passphrase does not open" in wrong.stderr
    assert not target.holds_a_database()
    damaged = tmp_path / "damaged"
    subprocess.run(["cp", "-r", str(backup_dir), str(damaged)], check=True)
    (damaged / "media" / "outputs" / "b-1.png").write_bytes(b"changed")
    refused = target.manage(
        "restore", str(damaged), "--with-secrets", RIVYA_BACKUP_PASSPHRASE=PASSPHRASE
    )
    assert refused.returncode != 0 and "does not match the manifest" in refused.stderr
    assert not target.holds_a_database()
