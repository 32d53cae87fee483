"""The language of the console: a member's saved choice, else the browser's Accept-Language."""

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.views.decorators.http import require_POST
from django.views.i18n import set_language

from rivya_dashboard.accounts.models import User


class MemberLanguageMiddleware:
    """Activates the signed-in member's language.

    Sits after AuthenticationMiddleware: LocaleMiddleware runs before the member is known, so it
    can only go by the language cookie and Accept-Language, which a member's choice outranks.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and user.language in dict(settings.LANGUAGES):
            translation.activate(user.language)
            request.LANGUAGE_CODE = user.language
        return self.get_response(request)


def do_set_language(member: User, language: str) -> None:
    member.language = language
    member.save(update_fields=["language"])


@login_not_required
@require_POST
def choose_language(request: HttpRequest) -> HttpResponse:
    """The header's switcher. Django's set_language keeps the choice in a cookie, which is all a
    visitor on the sign-in page has; a member's choice is also saved, so it follows them to any
    browser.
    """
    response = set_language(request)
    language = request.POST.get("language", "")
    if request.user.is_authenticated and language in dict(settings.LANGUAGES):
        do_set_language(request.user, language)
    return response
