"""Turn an unreadable stored key into that key's error page instead of a console-wide 500."""

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from rivya_dashboard.vault.crypto import DecryptionError
from rivya_dashboard.vault.models import ApiKey

logger = logging.getLogger(__name__)


class KeyUnusableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DecryptionError):
            return None
        # The message names the row and key id only, never any part of the value.
        logger.error("%s", exception)
        table, _, rest = exception.row.partition(":")
        pk = rest.partition(":")[0]
        key = None
        if table == ApiKey._meta.db_table and pk.isdigit():
            key = ApiKey.objects.filter(pk=int(pk)).first()
        context = {"key": key, "key_id": exception.key_id}
        return render(request, "vault/key_unusable.html", context, status=409)
