"""The role gate for views: every view names the least role that may use it."""

from collections.abc import Callable
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from rivya_dashboard.accounts.models import Role

View = Callable[..., HttpResponse]


def role_required(minimum: Role) -> Callable[[View], View]:
    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not (request.user.is_authenticated and request.user.has_role(minimum)):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        wrapped.minimum_role = minimum
        return wrapped

    return decorator
