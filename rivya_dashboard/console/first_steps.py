"""The getting-started checklist on the dashboard; each step ticks itself from the data."""

from dataclasses import dataclass

from django.urls import reverse
from django.utils.translation import gettext as _

from rivya_dashboard.accounts.models import User


@dataclass(frozen=True)
class Step:
    label: str
    done: bool
    url: str = ""
    help: str = ""


def first_steps(user: User) -> list[Step]:
    return [
        Step(_("Create the owner account"), done=True),
        Step(
            _("Invite a teammate"),
            done=User.objects.filter(is_active=True).count() > 1,
            url=reverse("team") if user.is_owner else "",
            help=_("Send a one-time link with a role: admin, operator or viewer."),
        ),
    ]
