"""AES-GCM round trip, row binding, keyring sources and failure messages."""

import base64
import os
import stat

import pytest
from django.core.exceptions import ImproperlyConfigured
from hypothesis import given
from hypothesis import settings as settings_hypothesis
from hypothesis import strategies as st

from rivya_dashboard.vault import crypto

ROW = "vault_apikey:7:secret"


def entry(key_id: str, byte: int) -> str:
    return f"{key_id}:" + base64.urlsafe_b64encode(bytes([byte]) * 32).decode().rstrip("=")


def test_it_round_trips_and_never_repeats_a_ciphertext(settings):
    settings.RIVYA_KEYRING = entry("ka", 1)
    first = crypto.encrypt("rvya_sk_secret", row=ROW)
    second = crypto.encrypt("rvya_sk_secret", row=ROW)
    assert first != second
    assert first.startswith("v1:ka:")
    assert "rvya_sk_secret" not in first
    assert crypto.decrypt(first, row=ROW) == "rvya_sk_secret"


def test_it_refuses_a_ciphertext_copied_to_another_row_or_field(settings):
    settings.RIVYA_KEYRING = entry("ka", 1)
    token = crypto.encrypt("rvya_sk_secret", row=ROW)
    for other in ("vault_apikey:8:secret", "vault_apikey:7:other", "webhooks_x:7:secret"):
        with pytest.raises(crypto.DecryptionError, match="belongs to another row"):
            crypto.decrypt(token, row=other)


def test_a_changed_byte_fails_with_row_and_key_id(settings):
    settings.RIVYA_KEYRING = entry("ka", 1)
    token = crypto.encrypt("rvya_sk_secret", row=ROW)
    head, body = token.rsplit(":", 1)
    flipped = body[:-3] + ("A" if body[-3] != "A" else "B") + body[-2:]
    with pytest.raises(crypto.DecryptionError) as caught:
        crypto.decrypt(f"{head}:{flipped}", row=ROW)
    assert caught.value.row == ROW and caught.value.key_id == "ka"
    assert ROW in str(caught.value) and "ka" in str(caught.value)
    assert body not in str(caught.value)


def test_the_key_id_in_the_header_is_bound_too(settings):
    settings.RIVYA_KEYRING = f"{entry('ka', 1)},{entry('kb', 1)}"
    token = crypto.encrypt("x", row=ROW)
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token.replace("v1:ka:", "v1:kb:"), row=ROW)


@pytest.mark.parametrize(
    "token", ["", "plain text", "v2:ka:abc", "v1:ka:", "v1:ka:!!!!", "v1:ka:YQ"]
)
def test_garbage_is_a_decryption_error_never_a_value(settings, token):
    settings.RIVYA_KEYRING = entry("ka", 1)
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token, row=ROW)


def test_a_missing_key_id_names_it(settings):
    settings.RIVYA_KEYRING = entry("ka", 1)
    token = crypto.encrypt("x", row=ROW)
    settings.RIVYA_KEYRING = entry("kb", 2)
    with pytest.raises(crypto.DecryptionError, match=r"key id ka.*not in the keyring"):
        crypto.decrypt(token, row=ROW)


def test_old_keys_still_decrypt_and_the_first_key_encrypts(settings):
    settings.RIVYA_KEYRING = entry("old", 1)
    token = crypto.encrypt("x", row=ROW)
    settings.RIVYA_KEYRING = f"{entry('new', 2)},{entry('old', 1)}"
    assert crypto.decrypt(token, row=ROW) == "x"
    assert crypto.key_id_of(crypto.encrypt("x", row=ROW)) == "new"


def test_the_managed_keyring_is_created_private_in_the_data_dir(settings, tmp_path):
    settings.RIVYA_KEYRING = ""
    settings.DATA_DIR = tmp_path / "data"
    token = crypto.encrypt("x", row=ROW)
    path = tmp_path / "data" / "keyring"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    key_id = path.read_text().split(":", 1)[0]
    assert crypto.key_id_of(token) == key_id
    assert settings.SECRET_KEY not in path.read_text()


def test_the_keyring_file_variable_is_read(settings, tmp_path, monkeypatch):
    from rivya_dashboard.env import env_secret

    file = tmp_path / "ring"
    file.write_text(entry("kf", 3) + "\n")
    monkeypatch.setenv("RIVYA_KEYRING_FILE", str(file))
    monkeypatch.delenv("RIVYA_KEYRING", raising=False)
    settings.RIVYA_KEYRING = env_secret("RIVYA_KEYRING")
    assert crypto.key_id_of(crypto.encrypt("x", row=ROW)) == "kf"


@pytest.mark.parametrize(
    "ring",
    ["nocolon", "bad id!:AAAA", "ka:" + "A" * 10, f"{entry('ka', 1)},{entry('ka', 2)}", " , "],
)
def test_a_malformed_keyring_stops_with_the_variable_name(settings, ring):
    settings.RIVYA_KEYRING = ring
    with pytest.raises(ImproperlyConfigured, match="RIVYA_KEYRING"):
        crypto.encrypt("x", row=ROW)


def test_a_new_primary_key_and_removal_of_old_ones(settings, tmp_path):
    settings.RIVYA_KEYRING = ""
    token = crypto.encrypt("x", row=ROW)
    old = crypto.key_id_of(token)
    new = crypto.add_primary_key()
    assert new != old
    assert crypto.key_id_of(crypto.encrypt("x", row=ROW)) == new
    assert crypto.decrypt(token, row=ROW) == "x"
    crypto.remove_keys({old, new})
    assert set(crypto.keyring().ciphers) == {new}
    assert stat.S_IMODE(os.stat(tmp_path / "keyring").st_mode) == 0o600


def test_a_key_added_by_another_process_is_picked_up(settings, tmp_path):
    settings.RIVYA_KEYRING = ""
    crypto.encrypt("x", row=ROW)
    path = tmp_path / "keyring"
    newer = entry("knew", 9)
    path.write_text(newer + "\n" + path.read_text())
    foreign = crypto.encrypt("y", row=ROW, ring=crypto.load_keyring())
    assert crypto.decrypt(foreign, row=ROW) == "y"


def test_env_keyring_cannot_be_extended_by_the_console(settings):
    settings.RIVYA_KEYRING = entry("ka", 1)
    with pytest.raises(ImproperlyConfigured, match="put a new entry first"):
        crypto.add_primary_key()


@settings_hypothesis(max_examples=200, deadline=None)
@given(plain=st.text(max_size=80), index=st.integers(min_value=0), bit=st.integers(0, 7))
def test_any_flipped_bit_is_refused(plain, index, bit):
    ring = crypto.Keyring({"ka": crypto.AESGCM(bytes(32))}, "ka", None)
    token = crypto.encrypt(plain, row=ROW, ring=ring)
    body = token.split(":", 2)[2]
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[index % len(raw)] ^= 1 << bit
    tampered = "v1:ka:" + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    assert crypto.decrypt(token, row=ROW, ring=ring) == plain
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(tampered, row=ROW, ring=ring)
