"""Backups that restore: a console in use is backed up, restored into a new data directory,
started, and found whole: members, keys (decrypted with the restored keyring), jobs, outputs,
chats and inbox requests. Each console runs as a person runs it, in processes of its own."""

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import OWN_SQLITE_ONLY, subprocess_env
from tests.unit.test_serve import ROOT, free_port

pytestmark = OWN_SQLITE_ONLY

RAW_KEY = "rvya_sk_" + "b" * 40
PASSPHRASE = "correct horse battery staple"

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
import json
from pathlib import Path
from django.conf import settings
from rivya_dashboard.accounts.models import User
from rivya_dashboard.chat.models import ChatTurn
from rivya_dashboard.console.models import Generation, Output
from rivya_dashboard.vault.models import ApiKey
from rivya_dashboard.webhooks.models import InboxRequest
output = Output.objects.get()
print(json.dumps({{
    "members": sorted(User.objects.values_list("username", flat=True)),
    "key": ApiKey.objects.get().reveal() == {RAW_KEY!r},
    "jobs": list(Generation.objects.values_list("prompt", flat=True)),
    "output": (Path(settings.MEDIA_ROOT) / "outputs" / output.cached_name).read_bytes().decode(),
    "chat": list(ChatTurn.objects.values_list("reply", flat=True)),
    "inbox": InboxRequest.objects.count(),
}}))
"""


def manage(data_dir: Path, *args: str, stdin: str | None = None, **env: str):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=subprocess_env(RIVYA_DATA_DIR=str(data_dir), RIVYA_DEBUG="0", **env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def started(data_dir: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--no-worker", "--port", str(port)],
        cwd=ROOT,
        env=subprocess_env(RIVYA_DATA_DIR=str(data_dir), RIVYA_DEBUG="0"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return process, port
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise AssertionError("the console did not start")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory) -> tuple[Path, Path]:
    original = tmp_path_factory.mktemp("original")
    assert manage(original, "migrate", "--verbosity=0").returncode == 0
    populated = manage(original, "shell", "-c", POPULATE)
    assert populated.returncode == 0, populated.stderr
    server, _ = started(original)
    try:
        backup_dir = tmp_path_factory.mktemp("backups") / "monday"
        made = manage(
            original,
            "backup",
            str(backup_dir),
            "--with-secrets",
            RIVYA_BACKUP_PASSPHRASE=PASSPHRASE,
        )
    finally:
        stop(server)
    assert made.returncode == 0, made.stderr
    return original, backup_dir


def test_a_backup_restores_into_a_new_data_directory_and_starts(backed_up, tmp_path):
    _, backup_dir = backed_up
    restored = tmp_path / "restored"

    done = manage(
        restored, "restore", str(backup_dir), "--with-secrets", RIVYA_BACKUP_PASSPHRASE=PASSPHRASE
    )
    assert done.returncode == 0, done.stderr
    server, _ = started(restored)
    stop(server)
    found = manage(restored, "shell", "-c", INSPECT)

    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout.strip().splitlines()[-1]) == {
        "members": ["ada", "opal"],
        "key": True,
        "jobs": ["harbour"],
        "output": "png bytes of the harbour",
        "chat": ["hello"],
        "inbox": 1,
    }


def test_the_manifest_counts_rows_and_checks_every_file(backed_up):
    _, backup_dir = backed_up
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["rows"]["accounts.User"] == 2
    assert manifest["rows"]["console.Output"] == 1
    assert set(manifest["files"]) == {"database.sqlite3", "media/outputs/b-1.png", "secrets.enc"}
    assert manifest["secrets"] is True


def test_secrets_are_encrypted_and_never_in_a_plain_backup(backed_up, tmp_path):
    original, backup_dir = backed_up
    sealed = (backup_dir / "secrets.enc").read_text()
    keyring = (original / "keyring").read_text().strip()
    assert keyring.split(":")[1] not in sealed
    assert RAW_KEY not in (backup_dir / "database.sqlite3").read_bytes().decode("latin-1")
    plain = tmp_path / "plain"
    assert manage(original, "backup", str(plain)).returncode == 0
    assert not (plain / "secrets.enc").exists()


def test_restore_refuses_a_data_directory_in_use(backed_up):
    original, backup_dir = backed_up
    refused = manage(
        original, "restore", str(backup_dir), "--with-secrets", RIVYA_BACKUP_PASSPHRASE=PASSPHRASE
    )
    assert refused.returncode != 0
    assert "already holds a console" in refused.stderr


def test_restore_refuses_a_wrong_passphrase_and_a_damaged_backup(backed_up, tmp_path):
    _, backup_dir = backed_up
    wrong = manage(
        tmp_path / "a",
        "restore",
        str(backup_dir),
        "--with-secrets",
        RIVYA_BACKUP_PASSPHRASE="not the right passphrase",
    )
    assert wrong.returncode != 0 and "passphrase does not open" in wrong.stderr
    assert not (tmp_path / "a" / "rivya.sqlite3").exists()
    damaged = tmp_path / "damaged"
    subprocess.run(["cp", "-r", str(backup_dir), str(damaged)], check=True)
    (damaged / "media" / "outputs" / "b-1.png").write_bytes(b"changed")
    refused = manage(
        tmp_path / "b",
        "restore",
        str(damaged),
        "--with-secrets",
        RIVYA_BACKUP_PASSPHRASE=PASSPHRASE,
    )
    assert refused.returncode != 0 and "does not match the manifest" in refused.stderr
