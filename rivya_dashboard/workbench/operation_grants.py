"""Which grant action an operation of the document needs, derived from its API scopes.

The document may name the scopes in the operation's security requirement; when it does not (the
contract leaves it open), the scope follows the contract's naming, `<resource>:read` for reads and
`<resource>:create` for writes, or `<resource>:manage` where that is the resource's only scope
(§2.2-2.3). Scopes map to console actions through the vault's own table, ACTION_SCOPES, so an
action added there reaches the explorer without a change here.
"""

from django.utils.translation import gettext as _

from rivya_dashboard.accounts.models import User
from rivya_dashboard.vault.grants import GrantRefused, check_grant
from rivya_dashboard.vault.models import ACTION_SCOPES, Action, ApiKey
from rivya_dashboard.workbench.operations import Operation

READ_METHODS = ("GET", "HEAD")


def known_scopes() -> set[str]:
    return {scope for scopes in ACTION_SCOPES.values() for scope in scopes}


def _resource_matches(segment: str, resource: str) -> bool:
    # "webhook-events" belongs to "webhooks", "chat" to "chat".
    return segment == resource or segment.startswith(resource.rstrip("s"))


def inferred_scopes(operation: Operation) -> tuple[str, ...]:
    segment = operation.path.strip("/").split("/")[0]
    verb = "read" if operation.method in READ_METHODS else "create"
    candidates = [
        scope for scope in known_scopes() if _resource_matches(segment, scope.split(":")[0])
    ]
    for wanted in (verb, "manage"):
        for scope in sorted(candidates):
            if scope.endswith(f":{wanted}"):
                return (scope,)
    return ()


def needed_scopes(operation: Operation) -> tuple[str, ...]:
    if operation.scopes:
        return operation.scopes
    if operation.public:
        return ()
    return inferred_scopes(operation)


def actions_for_scope(scope: str) -> list[str]:
    """The narrowest actions that carry the scope: reading a job needs read history, not the
    generate action that also happens to include generations:read."""
    holders = [action for action, scopes in ACTION_SCOPES.items() if scope in scopes]
    if not holders:
        return []
    narrowest = min(len(ACTION_SCOPES[action]) for action in holders)
    return [str(action) for action in holders if len(ACTION_SCOPES[action]) == narrowest]


def needed_actions(operation: Operation) -> list[list[str]]:
    """For each scope the operation needs, the actions any one of which allows it. A public
    operation still uses a key, so it needs browse."""
    scopes = needed_scopes(operation)
    if not scopes:
        return [[str(Action.BROWSE)]] if operation.public else [[]]
    return [actions_for_scope(scope) for scope in scopes]


def action_labels(operation: Operation) -> list[str]:
    labels = dict(Action.choices)
    return [
        " / ".join(str(labels[action]) for action in choices)
        for choices in needed_actions(operation)
        if choices
    ]


def check_operation(user: User, key: ApiKey, operation: Operation) -> str | None:
    """Raise GrantRefused unless the member's grant on key allows the operation (caps included:
    an exhausted cap refuses even a free call, as everywhere else). Returns the action that
    allows it, which the ledger checks again under the grant lock when the call is made."""
    allowing: str | None = None
    for choices in needed_actions(operation):
        if not choices:
            if user.is_admin:
                check_grant(user, key, Action.BROWSE)  # owners and admins: only "is it enabled"
                continue
            raise GrantRefused(
                _("No grant action covers %(operation)s, so only owners and admins may send it.")
                % {"operation": operation.operation_id}
            )
        refusals = []
        for action in choices:
            try:
                check_grant(user, key, action)
            except GrantRefused as exc:
                refusals.append(exc)
                continue
            allowing = allowing or action
            break
        else:
            raise refusals[0]
    return allowing
