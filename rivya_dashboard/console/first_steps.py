"""The getting-started checklist on the dashboard; each step ticks itself from the data.

It follows the safe first path of the Rivya docs: a key (or the sandbox), one generation with an
idempotency key, its status to the end, the balance before and after, then files, chat, webhooks.
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _

from rivya_dashboard.accounts.models import Role, User
from rivya_dashboard.console.models import TERMINAL, Generation, UploadedFile
from rivya_dashboard.vault.models import ApiKey, LedgerEntry


@dataclass(frozen=True)
class Step:
    label: str
    done: bool
    url: str = ""
    help: str = ""
    # Offer the one-click "Use the sandbox" key next to this step.
    sandbox_button: bool = False


def link(name: str, user: User, least: str) -> str:
    """The step's page when it exists and the member may open it; a plain label otherwise."""
    if not user.has_role(least):
        return ""
    try:
        return reverse(name)
    except NoReverseMatch:
        return ""


def first_steps(user: User) -> list[Step]:
    first_job = Generation.objects.order_by("created_at").first()
    finished = Generation.objects.filter(status__in=TERMINAL).order_by("created_at").first()
    return [
        Step(_("Create the owner account"), done=True),
        Step(
            _("Invite a teammate"),
            done=User.objects.filter(is_active=True).count() > 1,
            url=link("team", user, Role.OWNER),
            help=_("Send a one-time link with a role: admin, operator or viewer."),
        ),
        key_step(user),
        Step(
            _("Submit one generation"),
            done=first_job is not None,
            url=link("generate", user, Role.OPERATOR),
            help=_("The form sends an idempotency key, so a double click never pays twice."),
        ),
        Step(
            _("Watch its status to the end"),
            done=finished is not None,
            url=link("history", user, Role.VIEWER),
            help=_("The job page follows it from queued to succeeded or failed, no reload."),
        ),
        Step(
            _("Compare credits before and after"),
            done=finished is not None and compared_credits(finished),
            url=link("credits", user, Role.VIEWER),
            help=_(
                "Read the balance before a job and after it finishes; the difference is its cost."
            ),
        ),
        Step(
            _("Upload a file"),
            done=UploadedFile.objects.exists(),
            url=link("files", user, Role.VIEWER),
            help=_("Reference images, audio or video for models that take them."),
        ),
        Step(
            _("Chat with a model"),
            done=called("chat."),
            url=link("chat", user, Role.OPERATOR),
            help=_("Replies stream in; a refresh or a closed tab does not lose them."),
        ),
        Step(
            _("Add a webhook endpoint"),
            done=called("webhooks.create"),
            url=link("webhooks", user, Role.ADMIN),
            help=_("Rivya then tells the console when a job finishes instead of being asked."),
        ),
    ]


def key_step(user: User) -> Step:
    has_key = ApiKey.objects.exists()
    return Step(
        _("Add a Rivya API key"),
        done=has_key,
        url=reverse("key-add") if user.is_admin else "",
        help=_("Paste the team's key (it is tested, then stored encrypted), or try the sandbox."),
        sandbox_button=user.is_admin and settings.RIVYA_SANDBOX and not has_key,
    )


def called(operation_prefix: str) -> bool:
    ok = {"http_status__gte": 200, "http_status__lt": 300}
    return LedgerEntry.objects.filter(operation__startswith=operation_prefix, **ok).exists()


def compared_credits(job: Generation) -> bool:
    """A balance was read before the job was submitted and again once it had finished."""
    after = job.finished_at or job.updated_at
    return balance_read(before=job.created_at) and balance_read(after=after)


def balance_read(*, before: datetime | None = None, after: datetime | None = None) -> bool:
    """Every balance reading, from the Credits page or the generate form, is a ledger row."""
    calls = LedgerEntry.objects.filter(operation="credits.get", http_status=200)
    if before is not None:
        calls = calls.filter(at__lt=before)
    if after is not None:
        calls = calls.filter(at__gte=after)
    return calls.exists()
