"""A Server-Timing header on every response: the time Django spent on it, for browser devtools
and bench/pages.py, which must tell server time apart from time spent queued or on the wire."""

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class ServerTimingMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed_ms = (time.perf_counter() - started) * 1000
        # Streamed bodies are produced after this point; their header covers the start only.
        response.headers.setdefault("Server-Timing", f"app;dur={elapsed_ms:.1f}")
        return response
