"""Sandbox API keys: issue one (raw key returned once), and find the key a request presents."""

import hashlib

from django.db import transaction

from rivya_dashboard.sandbox import choices
from rivya_dashboard.sandbox.ids import random_string
from rivya_dashboard.sandbox.models import Account, SandboxKey


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def issue_key(
    *,
    scopes: list[str] | None = None,
    credits: int = choices.DEFAULT_ACCOUNT_CREDITS,
    account: Account | None = None,
    name: str = "",
) -> str:
    """Create a key (all scopes by default) and return the raw key; only its hash is kept.

    Without `account`, a new account holding `credits` is created for the key.
    """
    unknown = set(scopes or ()) - set(choices.SCOPES)
    if unknown:
        raise ValueError(f"Unknown scopes: {', '.join(sorted(unknown))}")
    raw_key = choices.KEY_PREFIX + random_string(choices.KEY_ALPHABET, choices.KEY_BODY_LENGTH)
    with transaction.atomic():
        if account is None:
            account = Account.objects.create(name=name or "Sandbox account", credits=credits)
        SandboxKey.objects.create(
            account=account,
            name=name,
            prefix=raw_key[: choices.KEY_DISPLAY_LENGTH],
            key_hash=hash_key(raw_key),
            scopes=list(choices.SCOPES) if scopes is None else list(scopes),
        )
    return raw_key


def find_key(raw_key: str) -> SandboxKey | None:
    return SandboxKey.objects.select_related("account").filter(key_hash=hash_key(raw_key)).first()
