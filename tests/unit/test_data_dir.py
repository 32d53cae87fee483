"""The data directory is 0700 and every file in it 0600 whatever the umask; the sandbox's
webhook signing secrets are stored sealed under the vault's keyring."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from rivya_dashboard.data_dir import tighten
from rivya_dashboard.sandbox import webhooks_targets
from rivya_dashboard.sandbox.models import WebhookEndpoint
from rivya_dashboard.vault import crypto, rotation
from tests.conftest import subprocess_env

ROOT = Path(__file__).resolve().parents[2]

# Runs in a console process started under umask 022: writes what the console writes into the
# data directory, then lists every path's mode while the database connection (and so SQLite's
# -wal and -shm files) is still open.
WRITE_AND_LIST = """
import json, os, stat
from pathlib import Path
from django.conf import settings
from rivya_dashboard.accounts.models import User
from rivya_dashboard.sandbox.files import uploads_dir
from rivya_dashboard.console import media_cache
from rivya_dashboard.vault import crypto
User.objects.create_user("someone", password="x" * 12)
crypto.encrypt("a secret", row="t:1:f")
media_cache.cache_dir().mkdir(parents=True, exist_ok=True)
(media_cache.cache_dir() / "1-0.png").write_bytes(b"png")
uploads_dir().mkdir(parents=True, exist_ok=True)
(uploads_dir() / "upload.bin").write_bytes(b"upload")
modes = {}
for root, dirs, files in os.walk(settings.DATA_DIR):
    for path in [root] + [os.path.join(root, f) for f in files]:
        name = os.path.relpath(path, settings.DATA_DIR)
        modes[name] = stat.S_IMODE(os.stat(path).st_mode)
print(json.dumps(modes))
"""


def run_under_umask_022(data_dir: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=subprocess_env(RIVYA_DATA_DIR=str(data_dir)),
        preexec_fn=lambda: os.umask(0o022),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


def test_everything_the_console_writes_is_private_under_umask_022(tmp_path):
    data_dir = tmp_path / "data"
    run_under_umask_022(data_dir, "migrate", "--verbosity", "0")

    listing = run_under_umask_022(data_dir, "shell", "-c", WRITE_AND_LIST)
    modes = json.loads(listing.strip().splitlines()[-1])

    expected = {"rivya.sqlite3", "rivya.sqlite3-wal", "rivya.sqlite3-shm", "keyring"}
    assert expected | {"secret_key", "media/outputs/1-0.png"} <= set(modes)
    assert any(name.endswith("upload.bin") for name in modes)
    loose = {
        name: oct(mode)
        for name, mode in modes.items()
        if mode != (0o700 if (data_dir / name).is_dir() else 0o600)
    }
    assert not loose, f"readable by others: {loose}"


def test_tighten_makes_what_an_earlier_version_left_private(tmp_path):
    (tmp_path / "media" / "outputs").mkdir(parents=True)
    for directory in (tmp_path, tmp_path / "media", tmp_path / "media" / "outputs"):
        os.chmod(directory, 0o755)  # noqa: S103 - the loose mode under test
    old = tmp_path / "media" / "outputs" / "1-0.png"
    old.write_bytes(b"png")
    os.chmod(old, 0o644)
    database = tmp_path / "rivya.sqlite3"
    database.write_bytes(b"")
    os.chmod(database, 0o664)

    changed = tighten(tmp_path)

    assert changed == 5
    assert stat.S_IMODE(old.stat().st_mode) == 0o600
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "media").stat().st_mode) == 0o700
    assert tighten(tmp_path) == 0


@pytest.fixture
def public_hosts(monkeypatch):
    # The sandbox resolves target names; example.com stands for any public host, offline.
    monkeypatch.setattr(webhooks_targets, "resolve", lambda host, port: ["93.184.216.34"])


@pytest.mark.django_db
@pytest.mark.usefixtures("public_hosts")
def test_the_sandbox_stores_webhook_secrets_sealed(sandbox_client):
    created = sandbox_client.create_webhook(
        name="Hook", url="https://example.com/hook", event_types=["generation.succeeded"]
    )
    secret = created["signing_secret"]
    endpoint = WebhookEndpoint.objects.get()

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {WebhookEndpoint._meta.db_table}")  # noqa: S608
        stored = json.dumps([list(map(str, row)) for row in cursor.fetchall()])

    assert secret not in stored
    assert crypto.key_id_of(endpoint.sealed_signing_secret) == crypto.keyring().primary_id
    assert endpoint.signing_secret == secret


@pytest.mark.django_db
@pytest.mark.usefixtures("public_hosts")
def test_a_rotation_re_encrypts_the_sandbox_secrets(sandbox_client):
    created = sandbox_client.create_webhook(
        name="Hook", url="https://example.com/hook", event_types=["generation.succeeded"]
    )
    before = crypto.key_id_of(WebhookEndpoint.objects.get().sealed_signing_secret)

    new_id = crypto.add_primary_key()
    report = rotation.reencrypt_all()

    endpoint = WebhookEndpoint.objects.get()
    assert new_id != before
    assert crypto.key_id_of(endpoint.sealed_signing_secret) == new_id
    assert endpoint.signing_secret == created["signing_secret"]
    assert report.reencrypted >= 1 and not report.failed
