"""rotate_encryption_key: re-encrypts every stored secret in batches, then old keys can go."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from rivya_dashboard.accounts.models import AuditEvent
from rivya_dashboard.vault import crypto
from rivya_dashboard.vault.models import ApiKey

pytestmark = pytest.mark.django_db


def store(n: int) -> list[ApiKey]:
    keys = []
    for i in range(n):
        key = ApiKey.objects.create(label=f"k{i}", environment="production", base_url="x")
        key.store_secret(f"rvya_sk_{i:040d}")
        key.save()
        keys.append(key)
    return keys


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("rotate_encryption_key", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_it_rotates_in_batches_and_removes_the_old_key(settings):
    settings.RIVYA_KEYRING = ""
    keys = store(7)
    old = crypto.keyring().primary_id
    output = run("--batch-size", "3", "--remove-old")
    new = crypto.keyring().primary_id
    assert new != old
    assert "Re-encrypted 7, already current 0, empty 0, failed 0." in output
    assert f"Removed unused keys {old}" in output
    assert set(crypto.keyring(refresh=True).ciphers) == {new}
    for key in keys:
        key.refresh_from_db()
        assert crypto.key_id_of(key.secret) == new
        assert key.reveal() == f"rvya_sk_{int(key.label[1:]):040d}"
    event = AuditEvent.objects.get(action="keyring.rotated")
    assert event.detail["reencrypted"] == 7 and event.target == new
    assert "rvya_sk_" not in str(event.detail)


def test_without_remove_old_it_names_the_retired_key(settings):
    settings.RIVYA_KEYRING = ""
    store(1)
    old = crypto.keyring().primary_id
    output = run()
    assert f"No stored secret uses {old} any more" in output
    assert old in crypto.keyring(refresh=True).ciphers


def test_an_env_keyring_rotates_to_its_first_entry(settings):
    settings.RIVYA_KEYRING = crypto.new_entry()
    store(2)
    fresh = crypto.new_entry()
    settings.RIVYA_KEYRING = f"{fresh},{settings.RIVYA_KEYRING}"
    output = run()
    first = fresh.split(":", 1)[0]
    assert "Re-encrypted 2" in output
    assert all(crypto.key_id_of(k.secret) == first for k in ApiKey.objects.all())
    assert "can be removed" in output


def test_an_unreadable_secret_is_reported_and_keeps_its_key(settings):
    settings.RIVYA_KEYRING = ""
    good, bad = store(2)
    ApiKey.objects.filter(pk=bad.pk).update(secret=good.secret)
    with pytest.raises(CommandError, match="1 secret"):
        run("--remove-old")
    old = crypto.key_id_of(good.secret)
    assert old in crypto.keyring(refresh=True).ciphers
    good.refresh_from_db()
    assert good.reveal() == "rvya_sk_" + "0" * 40


def test_print_new_entry_makes_a_valid_entry(settings):
    entry = run("--print-new-entry").strip()
    settings.RIVYA_KEYRING = entry
    assert crypto.key_id_of(crypto.encrypt("x", row="t:1:f")) == entry.split(":", 1)[0]
