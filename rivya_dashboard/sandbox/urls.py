"""The sandbox's URLs: the API under /sandbox/api/v1/ (namespace "sandbox-api").

API routes are built from the operations the endpoint modules declare (api.endpoint), so the
URL map, the checks and openapi.json come from one source. A new endpoint module is listed in
ENDPOINT_MODULES.
"""

import importlib
import re

from django.urls import include, path, re_path, register_converter

from rivya_dashboard.sandbox import control, control_api, media
from rivya_dashboard.sandbox.api import OPERATIONS, dispatcher, unrouted

ENDPOINT_MODULES = (
    "rivya_dashboard.sandbox.catalogue",
    "rivya_dashboard.sandbox.generations",
    "rivya_dashboard.sandbox.credits",
    "rivya_dashboard.sandbox.files",
    "rivya_dashboard.sandbox.chat",
    "rivya_dashboard.sandbox.webhooks",
    "rivya_dashboard.sandbox.openapi",
)
for module in ENDPOINT_MODULES:
    importlib.import_module(module)

PATH_PARAMETER = re.compile(r"\{(\w+)\}")


class AnyText:
    """Like <path:>, but also across line breaks, which <path:>'s "." does not match."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(AnyText, "anytext")


def url_name(api_path: str) -> str:
    """ "/generations/{taskId}" -> "generations-taskId": stable and readable in reverse()."""
    return api_path.strip("/").replace("/", "-").replace("{", "").replace("}", "")


def api_patterns() -> list:
    """Identifiers match any text (even an encoded "/" or a line break), so a strange id still
    gets the JSON not_found of its endpoint; longer paths come first so "/webhooks/{id}/test"
    wins over "/webhooks/{id}"; any other path under api/ gets the JSON not_found too."""
    paths = sorted(dict.fromkeys(op.path for op in OPERATIONS), key=lambda p: -p.count("/"))
    return [
        path(
            "v1/" + PATH_PARAMETER.sub(r"<anytext:\1>", api_path.lstrip("/")),
            dispatcher(api_path),
            name=url_name(api_path),
        )
        for api_path in paths
    ] + [
        path("media/<str:name>", media.serve, name="media"),
        path("control/keys", control_api.mint_key, name="control-keys"),
        re_path(r"^(?P<rest>[\s\S]*)\Z", unrouted, name="unrouted"),
    ]


urlpatterns = [
    path("api/", include((api_patterns(), "sandbox-api"))),
    path("control/", control.control_page, name="sandbox-control"),
    path("control/accounts/<int:pk>/top-up", control.control_top_up, name="sandbox-top-up"),
    path("control/keys/new", control.control_key_create, name="sandbox-key-create"),
    path("control/keys/<int:pk>/revoke", control.control_key_revoke, name="sandbox-key-revoke"),
    path("control/behaviour", control.control_behaviour, name="sandbox-behaviour"),
    path("control/faults", control.control_faults, name="sandbox-faults"),
    path("control/webhooks", control.control_webhooks, name="sandbox-webhook-settings"),
]
