"""Backups that restore: a consistent copy of the database and the media cache, with a manifest.

A backup is a directory:
- `database.sqlite3` (SQLite's online backup API: consistent while the console runs) or
  `database.pgdump` (pg_dump's custom format) on PostgreSQL;
- `media/`, the generation output cache;
- `manifest.json`: when, from which database engine, the row count of every table the console
  owns and the SHA-256 of every file;
- `secrets.enc` only when asked: SECRET_KEY and the keyring, AES-256-GCM under a key derived from
  a passphrase (scrypt). Without it, a restored console needs the same SECRET_KEY and keyring
  given to it, as the README says for every host.

Restoring checks every checksum before it writes anything, and refuses a data directory (or a
PostgreSQL database) that already holds a console.
"""

import base64
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from django.apps import apps
from django.conf import settings
from django.db import connection
from django.utils import timezone

from rivya_dashboard.vault import crypto
from rivya_dashboard.vault.crypto import write_private_file

SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
MEDIA_DIR = "media"
MANIFEST = "manifest.json"
SECRETS = "secrets.enc"
SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name
# Files a console writes into a data directory the moment it starts, before anything is restored.
STARTUP_FILES = {SECRET_KEY_FILE}
SCRYPT_N = 2**15
NEWER_ARCHIVE_HINT = (
    " The backup was written by a newer pg_dump: install that release's PostgreSQL client tools."
)


class BackupError(Exception):
    """The backup or restore cannot go on; the message says what to do."""


@dataclass(frozen=True)
class Summary:
    path: Path
    rows: dict[str, int]
    files: int
    bytes: int


def is_sqlite() -> bool:
    return connection.vendor == "sqlite"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def row_counts() -> dict[str, int]:
    owned = ("accounts", "vault", "console", "chat", "webhooks", "sandbox", "workbench")
    return {
        model._meta.label: model.objects.count()
        for model in apps.get_models()
        if model._meta.app_label in owned and not model._meta.proxy
    }


def copy_database(target: Path) -> Path:
    if is_sqlite():
        destination = target / SQLITE_FILE
        connection.ensure_connection()
        with sqlite3.connect(destination) as copy:
            connection.connection.backup(copy)
        return destination
    destination = target / PG_FILE
    run_pg(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={destination}"])
    return destination


# Connection options of DATABASE_URL that pg_dump and pg_restore read from the environment.
LIBPQ_OPTIONS = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
}


def pg_environment(database: dict) -> dict[str, str]:
    """A Django database setting for libpq's tools, without putting the password in argv."""
    given = {
        "PGDATABASE": database["NAME"],
        "PGUSER": database.get("USER"),
        "PGHOST": database.get("HOST"),
        "PGPORT": database.get("PORT"),
        "PGPASSWORD": database.get("PASSWORD"),
    }
    for option, name in LIBPQ_OPTIONS.items():
        given[name] = database.get("OPTIONS", {}).get(option)
    return {**os.environ, **{name: str(value) for name, value in given.items() if value}}


def client_major_version(tool: str) -> int:
    """The major version of a PostgreSQL client tool: `pg_dump (PostgreSQL) 15.20 (Debian …)`."""
    # The tool is pg_dump or pg_restore, found on PATH; no argument comes from input.
    done = subprocess.run(  # noqa: S603
        [tool, "--version"], capture_output=True, text=True, check=False
    )
    found = re.search(r"\)\s*(\d+)", done.stdout)
    if done.returncode != 0 or found is None:
        raise BackupError(f"{tool} --version gave no version; is it PostgreSQL's {tool}?")
    return int(found.group(1))


def check_client(tool: str) -> None:
    """Refuse, before anything is written, when the tool is missing or cannot serve the server."""
    if shutil.which(tool) is None:
        raise BackupError(f"{tool} is not installed; install PostgreSQL's client tools.")
    client = client_major_version(tool)
    server = connection.pg_version // 10000
    # pg_dump refuses a server newer than itself; say which tools to install instead.
    if tool == "pg_dump" and client < server:
        raise BackupError(
            f"pg_dump is from PostgreSQL {client} but the server runs PostgreSQL {server}; "
            f"install the client tools of PostgreSQL {server} or newer "
            f"(Debian: postgresql-client-{server})."
        )


def run_pg(command: list[str]) -> None:
    """Run pg_dump or pg_restore, once check_client has passed, on the console's database."""
    # The command is pg_dump or pg_restore with arguments built here, never from input.
    done = subprocess.run(  # noqa: S603
        command,
        env=pg_environment(settings.DATABASES["default"]),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        hint = NEWER_ARCHIVE_HINT if "unsupported version" in done.stderr else ""
        raise BackupError(f"{command[0]} failed: {done.stderr.strip()[:500]}{hint}")


def do_backup(target: Path, *, passphrase: str | None = None) -> Summary:
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty; name a new directory for the backup.")
    if not is_sqlite():
        check_client("pg_dump")
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    rows = row_counts()
    copy_database(target)
    media = Path(settings.MEDIA_ROOT)
    if media.is_dir():
        shutil.copytree(media, target / MEDIA_DIR)
    else:
        (target / MEDIA_DIR).mkdir()
    if passphrase:
        seal_secrets(target / SECRETS, passphrase)
    files = {
        str(path.relative_to(target)): sha256(path)
        for path in sorted(target.rglob("*"))
        if path.is_file()
    }
    manifest = {
        "created_at": timezone.now().isoformat(),
        "engine": connection.vendor,
        "rows": rows,
        "files": files,
        "secrets": bool(passphrase),
    }
    write_private_file(target / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
    size = sum((target / name).stat().st_size for name in files)
    return Summary(target, rows, len(files), size)


def scrypt_key(passphrase: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=8, p=1).derive(passphrase.encode())


def seal_secrets(path: Path, passphrase: str) -> None:
    secrets_json = json.dumps(
        {"secret_key": settings.SECRET_KEY, "keyring": crypto.keyring_text()}
    ).encode()
    salt, nonce = os.urandom(16), os.urandom(12)
    sealed = AESGCM(scrypt_key(passphrase, salt)).encrypt(nonce, secrets_json, b"rivya-backup")
    write_private_file(path, base64.b64encode(salt + nonce + sealed).decode())


def open_secrets(path: Path, passphrase: str) -> dict:
    raw = base64.b64decode(path.read_text())
    salt, nonce, sealed = raw[:16], raw[16:28], raw[28:]
    try:
        plain = AESGCM(scrypt_key(passphrase, salt)).decrypt(nonce, sealed, b"rivya-backup")
    except InvalidTag:
        raise BackupError("The passphrase does not open this backup's secrets.") from None
    return json.loads(plain)


def read_manifest(source: Path) -> dict:
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError):
        raise BackupError(f"{source} has no readable {MANIFEST}; is it a backup?") from None
    for name, digest in manifest["files"].items():
        path = source / name
        if not path.is_file() or sha256(path) != digest:
            raise BackupError(f"{name} does not match the manifest; the backup is damaged.")
    return manifest


def data_dir_in_use(data_dir: Path) -> bool:
    if not data_dir.exists():
        return False
    return any(path.name not in STARTUP_FILES for path in data_dir.iterdir())


def do_restore(source: Path, *, passphrase: str | None = None) -> dict:
    manifest = read_manifest(source)
    data_dir = Path(settings.DATA_DIR)
    if manifest["engine"] != connection.vendor:
        raise BackupError(
            f"This backup is of a {manifest['engine']} database; "
            f"restore it with DATABASE_URL pointing at {manifest['engine']}."
        )
    if manifest["secrets"] and not passphrase:
        raise BackupError("This backup holds encrypted secrets: give its passphrase.")
    if data_dir_in_use(data_dir):
        raise BackupError(f"{data_dir} already holds a console; restore into a new directory.")
    secrets = open_secrets(source / SECRETS, passphrase) if manifest["secrets"] else None
    if not is_sqlite():
        check_client("pg_restore")
        if postgres_in_use():
            raise BackupError(
                f"The PostgreSQL database {pg_dbname()} already has tables; create an empty "
                f"database and point DATABASE_URL at it."
            )
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if is_sqlite():
        connection.close()
        shutil.copyfile(source / SQLITE_FILE, settings.DATABASES["default"]["NAME"])
    else:
        run_pg(
            [
                "pg_restore",
                "--no-owner",
                "--no-privileges",
                # All or nothing: a failed restore leaves the database empty for another try.
                "--single-transaction",
                "--dbname",
                pg_dbname(),
                str(source / PG_FILE),
            ]
        )
    shutil.copytree(source / MEDIA_DIR, settings.MEDIA_ROOT, dirs_exist_ok=True)
    if secrets:
        write_private_file(data_dir / SECRET_KEY_FILE, secrets["secret_key"])
        write_private_file(data_dir / crypto.KEYRING_FILE_NAME, secrets["keyring"])
    return manifest


def pg_dbname() -> str:
    return settings.DATABASES["default"]["NAME"]


def postgres_in_use() -> bool:
    return bool(connection.introspection.table_names())
