"""Team rules: role changes, deactivation and invitations, each guarded and audited."""

from typing import TYPE_CHECKING

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from rivya_dashboard.accounts.audit import record
from rivya_dashboard.accounts.member_sessions import end_sessions
from rivya_dashboard.accounts.models import Invite, Role, User

if TYPE_CHECKING:
    from rivya_dashboard.accounts.forms import InviteAcceptForm


class TeamRuleError(Exception):
    """A change the team rules refuse; the message tells the owner what to do instead."""


def active_owner_count() -> int:
    return User.objects.filter(is_active=True, role=Role.OWNER).count()


def guard_last_owner(member: User) -> None:
    if member.role == Role.OWNER and member.is_active and active_owner_count() <= 1:
        raise TeamRuleError(
            _("%(name)s is the only owner. Make another member owner first.")
            % {"name": member.get_username()}
        )


@transaction.atomic
def do_change_role(actor: User, member: User, role: str, request: HttpRequest) -> None:
    if member.role == role:
        return
    if role != Role.OWNER:
        guard_last_owner(member)
    old = member.role
    member.role = role
    if role != Role.OWNER:
        # A superuser is always an owner (User.save), so demotion drops the flag.
        member.is_superuser = member.is_staff = False
    member.save(update_fields=["role", "is_superuser", "is_staff"])
    record(actor, "member.role_changed", member.get_username(), request=request, old=old, new=role)


@transaction.atomic
def do_set_active(actor: User, member: User, active: bool, request: HttpRequest) -> None:
    """Deactivation ends the member's sessions at once: the auth backend refuses inactive users."""
    if member.is_active == active:
        return
    if not active:
        if member == actor:
            raise TeamRuleError(_("You can't deactivate yourself. Ask another owner to do it."))
        guard_last_owner(member)
        end_sessions(member)
    member.is_active = active
    member.save(update_fields=["is_active"])
    action = "member.reactivated" if active else "member.deactivated"
    record(actor, action, member.get_username(), request=request)


@transaction.atomic
def do_invite(
    actor: User, *, email: str, role: str, days: int, request: HttpRequest
) -> tuple[Invite, str]:
    invite, token = Invite.issue(email=email, role=role, created_by=actor, days=days)
    record(actor, "invite.created", email, request=request, role=role, days=days)
    return invite, token


@transaction.atomic
def do_revoke_invite(actor: User, invite: Invite, request: HttpRequest) -> None:
    if invite.accepted_at or invite.revoked_at:
        return
    invite.revoked_at = timezone.now()
    invite.save(update_fields=["revoked_at"])
    record(actor, "invite.revoked", invite.email, request=request)


def do_accept_invite(invite: Invite, form: "InviteAcceptForm", request: HttpRequest) -> User:
    """Create the member and spend the invitation in one transaction, or neither."""
    with transaction.atomic():
        locked = Invite.objects.select_for_update().get(pk=invite.pk)
        if not locked.is_usable:
            raise TeamRuleError(_("This invitation link has already been used or has expired."))
        user = form.save(commit=False)
        user.email = locked.email
        user.role = locked.role
        user.save()
        locked.accepted_at = timezone.now()
        locked.accepted_by = user
        locked.save(update_fields=["accepted_at", "accepted_by"])
        record(user, "invite.accepted", user.get_username(), request=request, role=locked.role)
    return user
