"""The credit wallet (§7): reserve at submit, settle on success, refund on failure; GET /credits.

Every change is one conditional UPDATE, so concurrent submits can never take a balance below
zero on SQLite or PostgreSQL, whatever the interleaving.
"""

from django.db.models import F

from rivya_dashboard.sandbox.api import Call, component, endpoint
from rivya_dashboard.sandbox.errors import ApiError
from rivya_dashboard.sandbox.models import Account


def reserve(account: Account, amount: int) -> None:
    """Take `amount` credits or raise 402 insufficient_credits, leaving the balance untouched."""
    taken = Account.objects.filter(pk=account.pk, credits__gte=amount).update(
        credits=F("credits") - amount
    )
    if not taken:
        balance = Account.objects.values_list("credits", flat=True).get(pk=account.pk)
        raise ApiError(
            402,
            "insufficient_credits",
            f"This request needs {amount} credits; the account has {balance}. Top up first.",
        )


def refund(account_id: int, amount: int) -> None:
    if amount > 0:
        Account.objects.filter(pk=account_id).update(credits=F("credits") + amount)


def top_up(account: Account, amount: int) -> None:
    """Add credits (the control page's top-up)."""
    if amount <= 0:
        raise ValueError("A top-up must add at least one credit")
    refund(account.pk, amount)


def balance(account: Account) -> int:
    return Account.objects.values_list("credits", flat=True).get(pk=account.pk)


CREDITS = component(
    "Credits",
    {
        "type": "object",
        "properties": {"current_credits": {"type": "integer", "minimum": 0}},
        "required": ["current_credits"],
    },
)


@endpoint(
    "GET",
    "/credits",
    operation_id="getCredits",
    summary="Current credit balance of the key's account",
    scope="credits:read",
    response=CREDITS,
)
def get_credits(call: Call) -> dict:
    return {"current_credits": balance(call.account)}
