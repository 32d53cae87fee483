"""The sandbox's control API: what this console asks of its own sandbox over HTTP.

    POST /sandbox/api/control/keys   {"name": "...", "credits": 1000, "scopes": [...]}
    201 {"key": "rvya_sk_…", "prefix": "…", "credits": 1000, "scopes": [...]}

"Use the sandbox" mints its key here, through RivyaClient like any API client, instead of
running a management command inside a request and reading what it printed. Only this console
may call it: the Bearer token is RIVYA_SANDBOX_CONTROL_TOKEN, derived from the console's
SECRET_KEY, which no browser and no sandbox key holds. Answers carry the sandbox's error
envelope and request id. It is not part of the Rivya API, so openapi.json does not list it.
"""

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt

from rivya_dashboard.sandbox import choices
from rivya_dashboard.sandbox.api import BEARER, ApiError, Call, answer, parse_json_body
from rivya_dashboard.sandbox.control_forms import MAX_TOP_UP
from rivya_dashboard.sandbox.keys import issue_key

MINT_BODY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "maxLength": 100},
        "credits": {"type": "integer", "minimum": 0, "maximum": MAX_TOP_UP},
        "scopes": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "enum": list(choices.SCOPES)},
        },
    },
}


def check_control_token(call: Call) -> None:
    match = BEARER.match(call.request.headers.get("Authorization") or "")
    if match is None:
        raise ApiError(401, "api_key_missing", "The console's control token is required.")
    if not constant_time_compare(match.group(1), settings.RIVYA_SANDBOX_CONTROL_TOKEN):
        raise ApiError(401, "api_key_invalid", "Only this console may use the control API.")


@csrf_exempt
@login_not_required
def mint_key(request: HttpRequest) -> HttpResponse:
    def handle(call: Call) -> HttpResponse:
        if request.method != "POST":
            raise ApiError(
                405, "method_not_allowed", "POST is supported here; use POST.", {"Allow": "POST"}
            )
        check_control_token(call)
        body = parse_json_body(request, MINT_BODY, required=False) or {}
        credits = body.get("credits", choices.DEFAULT_ACCOUNT_CREDITS)
        scopes = body.get("scopes") or list(choices.SCOPES)
        raw_key = issue_key(scopes=scopes, credits=credits, name=body.get("name", ""))
        minted = {
            "key": raw_key,
            "prefix": raw_key[: choices.KEY_DISPLAY_LENGTH],
            "credits": credits,
            "scopes": scopes,
        }
        return JsonResponse(minted, status=201)

    return answer(request, handle)
