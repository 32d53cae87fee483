"""AES-256-GCM encryption of stored secrets under a keyring that lives outside the database.

A ciphertext reads `v1:<key id>:<base64url(nonce + sealed)>`. The associated data binds it to
one field of one row (`table:pk:field`), so a ciphertext copied into another row, or into
another field, fails to decrypt instead of silently lending its secret.

The keyring is `RIVYA_KEYRING` (or the file named by `RIVYA_KEYRING_FILE`): entries
`<key id>:<base64url 32 bytes>` separated by commas or new lines, the first one encrypts.
Without it, the console keeps its own keyring in `<data dir>/keyring` (mode 0600), created on
first use. It never derives a key from SECRET_KEY: rotating one must not lose the other.
"""

import base64
import binascii
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

VERSION = "v1"
NONCE_BYTES = 12
KEY_BYTES = 32
KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
KEYRING_FILE_NAME = "keyring"


class DecryptionError(Exception):
    """A stored secret cannot be read back. Names the row and key id, never the ciphertext."""

    def __init__(self, row: str, key_id: str, reason: str) -> None:
        self.row = row
        self.key_id = key_id
        self.reason = reason
        super().__init__(f"Cannot decrypt {row} (key id {key_id or 'unknown'}): {reason}")


class EncryptedTextField(models.TextField):
    """Marks a column holding ciphertext, so key rotation finds every stored secret.

    It stores the text as given: encryption needs the row's primary key for the binding, which
    a field cannot know before the row is inserted. Rotation looks for `holds_ciphertext`, so an
    app that may not import the vault (the sandbox) marks its own column the same way.
    """

    holds_ciphertext = True


def binding(instance: models.Model, field: str) -> str:
    return f"{instance._meta.db_table}:{instance.pk}:{field}"


@dataclass(frozen=True)
class Keyring:
    ciphers: dict[str, AESGCM]
    primary_id: str
    # The managed file when the console keeps its own keyring; None when the operator sets it.
    managed_path: Path | None
    stamp: float = 0.0

    def cipher(self, key_id: str) -> AESGCM | None:
        return self.ciphers.get(key_id)


def new_key_id() -> str:
    return "k" + secrets.token_hex(4)


def new_entry() -> str:
    key = base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode().rstrip("=")
    return f"{new_key_id()}:{key}"


def parse_keyring(text: str, source: str) -> tuple[dict[str, bytes], str]:
    keys: dict[str, bytes] = {}
    for raw in re.split(r"[,\n]", text):
        entry = raw.strip()
        if not entry:
            continue
        key_id, _, encoded = entry.partition(":")
        if not KEY_ID.match(key_id) or not encoded:
            raise ImproperlyConfigured(
                f"{source}: each entry must read <key id>:<base64 key>; "
                f"generate one with `manage.py rotate_encryption_key --print-new-entry`"
            )
        try:
            key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise ImproperlyConfigured(f"{source}: key {key_id} is not valid base64") from None
        if len(key) != KEY_BYTES:
            raise ImproperlyConfigured(f"{source}: key {key_id} must be 32 bytes (AES-256)")
        if key_id in keys:
            raise ImproperlyConfigured(f"{source}: key id {key_id} appears twice")
        keys[key_id] = key
    if not keys:
        raise ImproperlyConfigured(f"{source} holds no key")
    return keys, next(iter(keys))


def write_private_file(path: Path, text: str) -> None:
    """Replace path atomically with a 0600 file, so a reader never sees half a keyring."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def managed_keyring_path() -> Path:
    return Path(settings.DATA_DIR) / KEYRING_FILE_NAME


def ensure_managed_file(path: Path) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process created it between our check and our create: theirs wins.
        return
    with os.fdopen(fd, "w") as handle:
        handle.write(new_entry() + "\n")


def load_keyring() -> Keyring:
    configured = settings.RIVYA_KEYRING
    if configured:
        keys, primary = parse_keyring(configured, "RIVYA_KEYRING")
        return Keyring({k: AESGCM(v) for k, v in keys.items()}, primary, None)
    path = managed_keyring_path()
    ensure_managed_file(path)
    keys, primary = parse_keyring(path.read_text(), str(path))
    return Keyring({k: AESGCM(v) for k, v in keys.items()}, primary, path, path.stat().st_mtime)


def keyring_text() -> str:
    """The keyring as its file or RIVYA_KEYRING holds it, for an encrypted backup."""
    if settings.RIVYA_KEYRING:
        return settings.RIVYA_KEYRING
    path = managed_keyring_path()
    ensure_managed_file(path)
    return path.read_text()


_lock = threading.Lock()
_cached: tuple[tuple, Keyring] | None = None


def keyring(*, refresh: bool = False) -> Keyring:
    """The process's keyring, read once; re-read when settings change or `refresh` is asked."""
    global _cached
    source = (settings.RIVYA_KEYRING, str(settings.DATA_DIR))
    cached = _cached
    if cached is not None and cached[0] == source and not refresh:
        return cached[1]
    with _lock:
        ring = load_keyring()
        _cached = (source, ring)
        return ring


def fresh_keyring() -> Keyring:
    """Re-read a managed keyring file that another process (a rotation) has changed."""
    ring = keyring()
    if ring.managed_path is not None and ring.managed_path.stat().st_mtime != ring.stamp:
        return keyring(refresh=True)
    return ring


def associated_data(key_id: str, row: str) -> bytes:
    return f"{VERSION}:{key_id}:{row}".encode()


def encrypt(plaintext: str, *, row: str, ring: Keyring | None = None) -> str:
    ring = ring or fresh_keyring()
    key_id = ring.primary_id
    nonce = os.urandom(NONCE_BYTES)
    sealed = ring.ciphers[key_id].encrypt(nonce, plaintext.encode(), associated_data(key_id, row))
    body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
    return f"{VERSION}:{key_id}:{body}"


def key_id_of(token: str) -> str:
    parts = token.split(":", 2)
    return parts[1] if len(parts) == 3 and parts[0] == VERSION else ""


def decrypt(token: str, *, row: str, ring: Keyring | None = None) -> str:
    version, _, rest = (token or "").partition(":")
    key_id, _, body = rest.partition(":")
    if version != VERSION or not key_id or not body:
        raise DecryptionError(row, key_id, "the stored value is not a v1 ciphertext")
    ring = ring or keyring()
    cipher = ring.cipher(key_id)
    if cipher is None and ring.managed_path is not None:
        ring = keyring(refresh=True)
        cipher = ring.cipher(key_id)
    if cipher is None:
        raise DecryptionError(
            row, key_id, "this key id is not in the keyring; restore the keyring that has it"
        )
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise DecryptionError(row, key_id, "the ciphertext is not valid base64") from None
    if len(raw) <= NONCE_BYTES:
        raise DecryptionError(row, key_id, "the ciphertext is truncated")
    try:
        plain = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated_data(key_id, row))
    except InvalidTag:
        raise DecryptionError(
            row, key_id, "the ciphertext was altered or belongs to another row"
        ) from None
    return plain.decode()


def add_primary_key() -> str:
    """Put a new key first in the managed keyring file; returns its id."""
    ring = keyring(refresh=True)
    if ring.managed_path is None:
        raise ImproperlyConfigured(
            "RIVYA_KEYRING is set, so the console cannot add a key itself: put a new entry "
            "first in RIVYA_KEYRING, restart, then run rotate_encryption_key again"
        )
    entry = new_entry()
    old = ring.managed_path.read_text().strip()
    write_private_file(ring.managed_path, f"{entry}\n{old}\n")
    keyring(refresh=True)
    return entry.split(":", 1)[0]


def remove_keys(key_ids: set[str]) -> None:
    """Drop retired keys from the managed keyring file (never the primary one)."""
    ring = keyring(refresh=True)
    if ring.managed_path is None or not key_ids:
        return
    key_ids = key_ids - {ring.primary_id}
    kept = [
        line.strip()
        for line in ring.managed_path.read_text().splitlines()
        if line.strip() and line.strip().split(":", 1)[0] not in key_ids
    ]
    write_private_file(ring.managed_path, "\n".join(kept) + "\n")
    keyring(refresh=True)
