"""What the explorer page works with: the keys a member may pick, the document of the chosen
key's base URL, and the chosen operation."""

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from rivya_dashboard.accounts.models import User
from rivya_dashboard.console.models_catalog import catalogue_key
from rivya_dashboard.rivya.errors import RivyaError
from rivya_dashboard.vault.grants import GrantRefused
from rivya_dashboard.vault.models import ApiKey, KeyStatus
from rivya_dashboard.workbench import documents
from rivya_dashboard.workbench.models import ApiCall, ApiDocument
from rivya_dashboard.workbench.operation_grants import check_operation
from rivya_dashboard.workbench.operations import Catalogue, Operation


def sending_keys(user: User) -> list[ApiKey]:
    """Every active key for owners and admins; for others the active keys they hold a grant on
    (what the grant allows is decided per operation)."""
    keys = ApiKey.objects.filter(status=KeyStatus.ACTIVE)
    if user.is_admin:
        return list(keys)
    return list(keys.filter(grants__member=user).distinct())


@dataclass
class ExplorerState:
    keys: list[ApiKey]
    key: ApiKey | None
    document: ApiDocument | None
    catalogue: Catalogue
    operation: Operation | None

    @property
    def key_choices(self) -> list[tuple[str, str]]:
        return [(str(key.pk), f"{key.label} ({key.display})") for key in self.keys]


def explorer_state(user: User, key_id: str | None, operation_id: str | None) -> ExplorerState:
    keys = sending_keys(user)
    key = next((k for k in keys if str(k.pk) == str(key_id)), keys[0] if keys else None)
    # A member without a key still reads the operations, from the document of the team's key.
    source = key or catalogue_key()
    if source is None:
        return ExplorerState(keys, None, None, Catalogue(), None)
    document, catalogue = documents.catalogue_for(source.base_url)
    if document.fetched_at is None and document.attempted_at is None:
        try:
            document = documents.do_refresh(source)
        except RivyaError:
            document.refresh_from_db()
        document, catalogue = documents.catalogue_for(source.base_url)
    operation = catalogue.find(operation_id)
    return ExplorerState(keys, key, document, catalogue, operation)


def refusal(user: User, key: ApiKey | None, operation: Operation) -> str:
    """Why this member may not send the operation with this key; empty when they may."""
    if key is None:
        return ""
    try:
        check_operation(user, key, operation)
    except GrantRefused as exc:
        return str(exc)
    return ""


def posted_key_refusal(user: User, key_id: str, state: ExplorerState) -> str:
    """A posted key that is not among the member's keys, explained in the grant's own words."""
    if not key_id.isdigit() or any(str(key.pk) == key_id for key in state.keys):
        return ""
    key = ApiKey.objects.filter(pk=key_id).first()
    if key is None or state.operation is None:
        return ""
    return refusal(user, key, state.operation)


def path_pattern(template: str) -> re.Pattern:
    parts = re.split(r"\{(\w+)\}", template)
    pattern = "".join(
        re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)"
        for index, part in enumerate(parts)
    )
    return re.compile(pattern + "$")


def initial_from_call(call: ApiCall, catalogue: Catalogue) -> tuple[Operation | None, dict]:
    """The operation a stored call used and the form values that send it again ("Open in
    explorer"): path and query parameters from its URL, its JSON body in the raw editor."""
    parts = urlsplit(call.url)
    for operation in catalogue.operations:
        if operation.method != call.method:
            continue
        found = path_pattern(operation.path).search(parts.path)
        if found is None:
            continue
        initial: dict = {
            f"path.{name}": unquote(value) for name, value in found.groupdict().items()
        }
        query = parse_qs(parts.query)
        for parameter in operation.parameters:
            if parameter.location == "query" and parameter.name in query:
                values = query[parameter.name]
                initial[f"query.{parameter.name}"] = values if len(values) > 1 else values[0]
        if call.request_body and call.pretty_request:
            initial["raw_body"] = call.pretty_request
        if call.key_id:
            initial["key"] = str(call.key_id)
        return operation, initial
    return None, {}
