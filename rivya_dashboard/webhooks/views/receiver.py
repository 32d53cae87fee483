"""The receiver URL of an inbox: a machine endpoint, authenticated by its unguessable token."""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from rivya_dashboard.webhooks import receiver


def content_length(request: HttpRequest) -> int | None:
    """The declared body length; None when it is not a number of bytes (RFC 9110 §8.6)."""
    raw = request.META.get("CONTENT_LENGTH") or "0"
    return int(raw) if raw.isascii() and raw.isdigit() else None


@login_not_required
@csrf_exempt
def receive(request: HttpRequest, token: str) -> HttpResponse:
    inbox = receiver.find_inbox(token)
    if inbox is None:
        # The same answer for every unknown token: it says nothing about which inboxes exist.
        return JsonResponse({"error": "not_found"}, status=404)
    refused = receiver.admit(inbox)
    if refused is not None:
        # Refused before the body is read: past the first refusal a flood costs neither.
        return answer(refused)
    cap = receiver.max_body_bytes()
    size = content_length(request)
    body = None
    if size is not None and size <= cap:
        # Read the raw stream, never request.body or POST: the signature covers these exact bytes.
        body = request.read(cap + 1)
        size = len(body)
        if size > cap:
            body = None
    outcome = receiver.ingest(
        inbox,
        request.method or "",
        dict(request.headers),
        body,
        size,
        request.META.get("REMOTE_ADDR") or None,
    )
    return answer(outcome)


def answer(outcome: receiver.Outcome) -> JsonResponse:
    response = JsonResponse(outcome.payload, status=outcome.status)
    if outcome.retry_after is not None:
        response["Retry-After"] = str(outcome.retry_after)
    return response
