"""The navigation bar: a section appears once its page exists and the member's role may open it."""

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext_lazy as _

from rivya_dashboard.accounts.models import Role

# (url name, label, least role). Sections whose URL is not routed yet are left out, not dead links.
SECTIONS = [
    ("models", _("Models"), Role.VIEWER),
    ("generate", _("Generate"), Role.OPERATOR),
    ("history", _("History"), Role.VIEWER),
    ("files", _("Files"), Role.VIEWER),
    # Viewers read the chats a read-only grant shows them; starting one takes an operator.
    ("chat", _("Chat"), Role.VIEWER),
    ("credits", _("Credits"), Role.VIEWER),
    ("usage", _("Usage"), Role.VIEWER),
    ("webhooks", _("Webhooks"), Role.ADMIN),
    ("inbox", _("Inbox"), Role.OPERATOR),
    ("workbench:explorer", _("Workbench"), Role.VIEWER),
    ("keys", _("Keys"), Role.VIEWER),
    ("team", _("Team"), Role.OWNER),
    ("audit", _("Audit"), Role.ADMIN),
    ("security", _("Security"), Role.ADMIN),
    ("sandbox-control", _("Sandbox"), Role.ADMIN),
]


# Sections that set the console up rather than use it: one "Admin" menu, so an owner's bar
# fits one line on a laptop. A member who may open only one of them sees it in the bar itself.
ADMIN_GROUP = {"keys", "team", "audit", "security", "sandbox-control"}


def navigation(request: HttpRequest) -> dict:
    """`nav`, worked out only when a template shows the bar: a partial swapped into a page,
    or a chat reply's end rendered inside its stream, does not."""
    return {"nav": SimpleLazyObject(lambda: navigation_bar(request))}


def navigation_bar(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"sections": [], "admin": []}
    sections, admin = [], []
    for name, label, minimum in SECTIONS:
        if not user.has_role(minimum):
            continue
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        section = {"url": url, "label": label, "active": request.path.startswith(url)}
        (admin if name in ADMIN_GROUP else sections).append(section)
    if len(admin) < 2:
        return {"sections": sections + admin, "admin": []}
    return {
        "sections": sections,
        "admin": admin,
        "admin_active": any(section["active"] for section in admin),
    }
