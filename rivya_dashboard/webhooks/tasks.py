"""Background work of the inboxes (django-tasks): forwards, replays, generation updates, alerts."""

from django_tasks import task

from rivya_dashboard.accounts.models import User
from rivya_dashboard.webhooks import alerts, forwarding, generation_updates
from rivya_dashboard.webhooks.models import ForwardAttempt, InboxRequest


@task()
def forward_request(request_pk: int) -> str:
    row = InboxRequest.objects.select_related("inbox").filter(pk=request_pk).first()
    sent = forwarding.forward_live(row) if row else None
    return str(sent.response_status if sent else "skipped")


@task()
def replay_many(ids: list[int], target: str, actor_pk: int, allow_local: bool) -> int:
    actor = User.objects.filter(pk=actor_pk).first()
    rows = InboxRequest.objects.select_related("inbox").filter(pk__in=ids).order_by("received_at")
    for row in rows:
        forwarding.attempt(
            row,
            target,
            row.body_bytes,
            forwarding.outgoing_headers(row.headers),
            kind=ForwardAttempt.Kind.REPLAY,
            actor=actor,
            allow_local=allow_local,
        )
    return len(ids)


@task()
def apply_generation_event(request_pk: int, data: dict) -> str:
    generation = generation_updates.do_apply_event(request_pk, data)
    return generation.status if generation else "no tracked job"


@task()
def check_endpoints() -> int:
    return alerts.check_all()
