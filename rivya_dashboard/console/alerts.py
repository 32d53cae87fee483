"""Low-balance alerts: a threshold per key's account, a banner for admins, an optional JSON POST.

A crossing is remembered on the BalanceAlert row, so a balance that stays low raises one audit
entry and one POST, and a top-up that lifts it back re-arms the alert.
"""

import logging

from django import forms
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from rivya_dashboard.accounts.audit import record
from rivya_dashboard.accounts.models import Role, User
from rivya_dashboard.console.models import BalanceAlert, BalanceReading
from rivya_dashboard.outbound import RequestFailed, UnsafeURL, check_url, guarded_session
from rivya_dashboard.vault.models import ApiKey

logger = logging.getLogger(__name__)

ALERT_TIMEOUT_SECONDS = 5


class AlertForm(forms.ModelForm):
    # The stored URL is never shown again (it may hold a secret); blank keeps it.
    new_alert_url = forms.URLField(
        label=gettext_lazy("Alert URL"),
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text=gettext_lazy(
            "Optional: the console POSTs a JSON alert here (a public http(s) address)."
        ),
    )
    remove_alert_url = forms.BooleanField(
        label=gettext_lazy("Stop sending alerts to the saved URL"), required=False
    )

    class Meta:
        model = BalanceAlert
        fields = ["threshold"]
        help_texts = {
            "threshold": gettext_lazy(
                "Warn admins when the balance falls below this many credits."
            ),
        }

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.alert_url:
            self.fields["new_alert_url"].help_text = _(
                "Alerts go to %(url)s. Paste a new URL to replace it, or leave blank to keep it."
            ) % {"url": self.instance.url_display}
        else:
            del self.fields["remove_alert_url"]

    def clean_new_alert_url(self) -> str:
        url = self.cleaned_data["new_alert_url"].strip()
        if not url:
            return ""
        try:
            return check_url(
                url,
                advice=_(
                    "Use the public address of the service that should hear about the low "
                    "balance, such as a chat tool's incoming-webhook URL."
                ),
            )
        except UnsafeURL as exc:
            raise forms.ValidationError(str(exc)) from None

    def save(self, commit: bool = True) -> BalanceAlert:
        alert = super().save(commit=False)
        if self.cleaned_data.get("remove_alert_url"):
            alert.alert_url = ""
        elif self.cleaned_data["new_alert_url"]:
            alert.alert_url = self.cleaned_data["new_alert_url"]
        if commit:
            alert.save()
        return alert


def alert_for(key: ApiKey) -> BalanceAlert:
    return BalanceAlert.objects.filter(key=key).first() or BalanceAlert(key=key)


def alert_form(key: ApiKey, data: object = None) -> AlertForm:
    # One form per key on the same page: the prefix keeps their field ids apart.
    return AlertForm(data, instance=alert_for(key), prefix=f"alert-{key.pk}")


@transaction.atomic
def do_save_alert(actor: User, form: AlertForm, *, request: HttpRequest | None = None) -> None:
    alert = form.save(commit=False)
    # A new threshold is judged afresh by the next reading.
    alert.below_since = None
    alert.notified_at = None
    alert.notify_error = ""
    alert.save()
    record(
        actor,
        "credits.alert_changed",
        alert.key.label,
        request=request,
        threshold=alert.threshold,
        alert_url=alert.url_display,
    )


def do_check_threshold(reading: BalanceReading) -> None:
    if reading.failed:
        return
    alert = BalanceAlert.objects.filter(key=reading.key).first()
    if alert is None or alert.threshold is None:
        return
    if reading.credits >= alert.threshold:
        if alert.below_since is not None:
            alert.below_since = alert.notified_at = None
            alert.notify_error = ""
            alert.save(update_fields=["below_since", "notified_at", "notify_error"])
        return
    if alert.below_since is not None:
        return
    alert.below_since = reading.at
    record(
        None,
        "credits.low_balance",
        reading.key.label,
        credits=str(reading.credits),
        threshold=alert.threshold,
        alert_url=alert.url_display,
    )
    if alert.alert_url:
        do_notify(alert, reading)
    alert.save(update_fields=["below_since", "notified_at", "notify_error"])


def do_notify(alert: BalanceAlert, reading: BalanceReading) -> None:
    payload = {
        "type": "credits.low_balance",
        "key": reading.key.label,
        "current_credits": float(reading.credits),
        "threshold": alert.threshold,
        "read_at": reading.at.isoformat(),
    }
    try:
        # Checked again at send time: the name may resolve elsewhere than when it was saved.
        check_url(alert.alert_url)
        response = guarded_session().post(
            alert.alert_url, json=payload, timeout=ALERT_TIMEOUT_SECONDS
        )
    except (UnsafeURL, RequestFailed, OSError) as exc:
        # A requests error quotes the URL's path, where chat webhooks keep their secret.
        reason = str(exc) if isinstance(exc, UnsafeURL) else type(exc).__name__
        alert.notify_error = _("The alert could not be sent: %(reason)s") % {"reason": reason}
        logger.warning("Low-balance alert for key %s not sent: %s", alert.key_id, reason)
        return
    if 200 <= response.status_code < 300:
        alert.notified_at = timezone.now()
        alert.notify_error = ""
    else:
        alert.notify_error = _("The alert URL answered HTTP %(status)s.") % {
            "status": response.status_code
        }


def low_balance_banner(request: HttpRequest) -> dict:
    """Admins see every account below its threshold on every page until it is topped up."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.has_role(Role.ADMIN):
        return {}
    # Read only when a page shows the banner, not for partials.
    low = BalanceAlert.objects.filter(below_since__isnull=False).select_related("key")
    return {"low_balance_alerts": SimpleLazyObject(lambda: list(low))}
