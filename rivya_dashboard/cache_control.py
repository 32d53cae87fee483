"""Cache-Control: no-store on everything the console serves that is not public.

Pages, fragments, exports, cached outputs and API answers carry team data: a shared proxy or the
browser's disk cache must not keep them after a member signs out. A response that declares
itself public (WhiteNoise's static files, /healthz) keeps its own header.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

NO_STORE = "no-store"


def is_public(response: HttpResponse) -> bool:
    directives = {part.strip().lower() for part in response.get("Cache-Control", "").split(",")}
    return "public" in directives


class NoStoreMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not is_public(response):
            response["Cache-Control"] = NO_STORE
        return response
