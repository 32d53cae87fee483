"""Real webhook deliveries to a receiver on 127.0.0.1: signatures, retries, faults, auto-disable."""

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from rivya_dashboard.rivya import signing
from rivya_dashboard.sandbox import choices, ids, webhooks_delivery, webhooks_targets
from rivya_dashboard.sandbox.generations import advance
from rivya_dashboard.sandbox.keys import find_key, issue_key
from rivya_dashboard.sandbox.models import (
    Account,
    Generation,
    SandboxSettings,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookSettings,
)
from rivya_dashboard.sandbox.webhooks_delivery import (
    attempt_delivery,
    deliver_due,
    emit,
    schedule_sweep,
    sweep,
)
from rivya_dashboard.sandbox.webhooks_payloads import event_object
from tests.sandbox.conftest import BASE, Api

IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
DATA = {"id": "task_abc", "status": "succeeded"}


class Receiver:
    """A tiny HTTP server that records every POST and answers with queued statuses."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def events(self) -> list[str]:
        return [json.loads(body)["id"] for _, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def local_targets(db) -> WebhookSettings:
    row = WebhookSettings.load()
    row.allow_local_targets = True
    row.save()
    return row


@pytest.fixture
def raw_key(db) -> str:
    return issue_key()


@pytest.fixture
def account(raw_key) -> Account:
    return find_key(raw_key).account


@pytest.fixture
def endpoint(account, receiver, local_targets, raw_key) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        account=account,
        name="Local receiver",
        url=receiver.url,
        event_types=["generation.succeeded", "generation.failed"],
        created_by_key=find_key(raw_key),
    )


def emit_one(account: Account, data: dict = DATA) -> WebhookDelivery:
    # Each generation emits once, so every call stands for a new task id.
    task_id = ids.public_id("task_")
    _, deliveries = emit(account, "generation.succeeded", {**data, "id": task_id}, task_id=task_id)
    return deliveries[0]


def set_fast(fast: bool) -> None:
    WebhookSettings.objects.filter(pk=1).update(fast_retries=fast)


def test_it_delivers_a_signed_event(account, endpoint, receiver):
    delivery = emit_one(account)

    attempt_delivery(delivery.pk)

    [(headers, body)] = receiver.received
    verified = signing.verify(endpoint.signing_secret, headers, body)
    assert verified.msg_id == delivery.event.public_id
    assert json.loads(body) == event_object(delivery.event)
    assert json.loads(body)["data"] == delivery.event.data
    assert delivery.event.data["status"] == "succeeded"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("Rivya-Sandbox-Webhooks")
    delivery.refresh_from_db()
    endpoint.refresh_from_db()
    assert (delivery.status, delivery.attempt, delivery.response_status) == ("succeeded", 1, 200)
    assert delivery.completed_at is not None and delivery.next_retry_at is None
    assert endpoint.last_success_at is not None
    assert WebhookAttempt.objects.get().response_status == 200


def test_the_worker_task_delivers_a_test_event(
    raw_key, endpoint, receiver, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = IMMEDIATE

    with django_capture_on_commit_callbacks(execute=True):
        response = Api(raw_key).client.post(
            f"{BASE}/webhooks/{endpoint.public_id}/test",
            headers={"Authorization": f"Bearer {raw_key}"},
        )

    assert response.status_code == 202
    delivery = WebhookDelivery.objects.get(public_id=response.json()["id"])
    assert (delivery.status, delivery.attempt) == ("succeeded", 1)
    [(headers, body)] = receiver.received
    assert signing.verify(endpoint.signing_secret, headers, body)
    assert json.loads(body)["test"] is True


def test_an_endpoint_only_gets_the_event_types_it_chose(account, endpoint):
    endpoint.event_types = ["generation.failed"]
    endpoint.save()

    _, deliveries = emit(account, "generation.succeeded", DATA)

    assert deliveries == []


def test_it_does_not_attempt_before_the_retry_is_due(account, endpoint, receiver):
    receiver.statuses = [500]
    delivery = emit_one(account)
    attempt_delivery(delivery.pk)

    assert attempt_delivery(delivery.pk) is None
    assert deliver_due() == 0
    assert len(receiver.received) == 1


@pytest.mark.parametrize(
    ("fast", "offsets"),
    [(True, [1, 5, 30, 120, 360]), (False, [60, 300, 1800, 7200, 21600])],
)
def test_failed_attempts_follow_the_retry_schedule(account, endpoint, receiver, fast, offsets):
    set_fast(fast)
    receiver.statuses = [500] * 6
    delivery = emit_one(account)
    created = delivery.created_at
    now = created
    seen = []

    for _ in range(5):
        assert deliver_due(now=now) == 1
        delivery.refresh_from_db()
        assert delivery.status == "pending"
        seen.append((delivery.next_retry_at - created).total_seconds())
        now = delivery.next_retry_at
    deliver_due(now=now)

    delivery.refresh_from_db()
    endpoint.refresh_from_db()
    assert seen == offsets
    assert (delivery.status, delivery.attempt, delivery.response_status) == ("failed", 6, 500)
    assert delivery.error == "The receiver answered HTTP 500."
    assert delivery.next_retry_at is None and delivery.completed_at == now
    assert (endpoint.failure_count, endpoint.failed_events_in_a_row) == (6, 1)
    assert endpoint.last_failure_at == now
    assert len(receiver.received) == 6
    assert (
        len({signing.verify(endpoint.signing_secret, h, b).msg_id for h, b in receiver.received})
        == 1
    )


def test_a_fast_retry_really_arrives(account, endpoint, receiver):
    set_fast(True)
    receiver.statuses = [503]
    delivery = emit_one(account)
    attempt_delivery(delivery.pk)
    delivery.refresh_from_db()

    time.sleep(max(0.0, (delivery.next_retry_at - timezone.now()).total_seconds()) + 0.01)
    sent = deliver_due()

    delivery.refresh_from_db()
    endpoint.refresh_from_db()
    assert sent == 1
    assert (delivery.status, delivery.attempt) == ("succeeded", 2)
    assert endpoint.failure_count == 0
    assert receiver.events() == [delivery.event.public_id] * 2


def fail_completely(account: Account) -> None:
    delivery = emit_one(account)
    for offset in choices.WEBHOOK_RETRY_DELAYS_SECONDS:
        deliver_due(now=delivery.created_at + timedelta(seconds=offset))


def test_it_disables_an_endpoint_after_twenty_failed_events(account, endpoint, receiver):
    receiver.statuses = [500] * 200

    for _ in range(19):
        fail_completely(account)
    endpoint.refresh_from_db()
    assert endpoint.status == "active"
    fail_completely(account)

    endpoint.refresh_from_db()
    assert (endpoint.status, endpoint.failed_events_in_a_row) == ("disabled", 20)
    assert endpoint.disabled_at is not None
    assert len(receiver.received) == 120
    assert emit(account, "generation.succeeded", DATA)[1] == []


def test_a_success_resets_the_failure_counts(account, endpoint):
    WebhookEndpoint.objects.update(failure_count=5, failed_events_in_a_row=3)

    attempt_delivery(emit_one(account).pk)

    endpoint.refresh_from_db()
    assert (endpoint.failure_count, endpoint.failed_events_in_a_row) == (0, 0)


def test_both_secrets_sign_during_a_rotation_overlap(account, endpoint, receiver):
    old = endpoint.signing_secret
    endpoint.previous_secret = old
    endpoint.previous_secret_until = timezone.now() + timedelta(minutes=5)
    endpoint.signing_secret = signing.SECRET_PREFIX + "new-secret"
    endpoint.save()

    attempt_delivery(emit_one(account).pk)

    [(headers, body)] = receiver.received
    assert headers[signing.SIGNATURE_HEADER].count("v1=") == 2
    assert signing.verify(old, headers, body)
    assert signing.verify(endpoint.signing_secret, headers, body)


def test_the_old_secret_stops_signing_when_the_overlap_ends(account, endpoint, receiver):
    old = endpoint.signing_secret
    endpoint.previous_secret = old
    endpoint.previous_secret_until = timezone.now() - timedelta(seconds=1)
    endpoint.signing_secret = signing.SECRET_PREFIX + "new-secret"
    endpoint.save()

    attempt_delivery(emit_one(account).pk)

    [(headers, body)] = receiver.received
    with pytest.raises(signing.WebhookVerificationError) as caught:
        signing.verify(old, headers, body)
    assert caught.value.reason == signing.WebhookVerificationError.NO_MATCHING_SIGNATURE


def set_global_faults(**faults: object) -> None:
    SandboxSettings.load()
    SandboxSettings.objects.update(faults=faults)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("bad-signature", signing.WebhookVerificationError.NO_MATCHING_SIGNATURE),
        ("stale-timestamp", signing.WebhookVerificationError.TIMESTAMP_TOO_OLD),
    ],
)
def test_signature_faults_make_verification_fail(account, endpoint, receiver, fault, reason):
    set_global_faults(**{fault: True})

    attempt_delivery(emit_one(account).pk)

    [(headers, body)] = receiver.received
    with pytest.raises(signing.WebhookVerificationError) as caught:
        signing.verify(endpoint.signing_secret, headers, body)
    assert caught.value.reason == reason
    assert WebhookAttempt.objects.get().fault == fault


def test_a_fault_on_the_endpoints_key_applies(account, endpoint, receiver, raw_key):
    key = find_key(raw_key)
    key.faults = {"duplicate-delivery": True}
    key.save()

    attempt_delivery(emit_one(account).pk)

    assert len(receiver.received) == 2
    assert receiver.received[0] == receiver.received[1]
    assert WebhookAttempt.objects.count() == 1


def test_a_request_header_fault_applies_to_a_test_event(raw_key, endpoint, receiver):
    response = Api(raw_key).client.post(
        f"{BASE}/webhooks/{endpoint.public_id}/test",
        headers={"Authorization": f"Bearer {raw_key}", "X-Sandbox-Fault": "bad-signature"},
    )

    attempt_delivery(WebhookDelivery.objects.get(public_id=response.json()["id"]).pk)

    [(headers, body)] = receiver.received
    with pytest.raises(signing.WebhookVerificationError):
        signing.verify(endpoint.signing_secret, headers, body)


def test_out_of_order_delivers_the_newer_event_first(account, endpoint, receiver):
    set_global_faults(**{"out-of-order": True})
    first = emit_one(account)
    second = emit_one(account)

    attempt_delivery(first.pk)
    assert receiver.received == []
    attempt_delivery(second.pk)

    assert receiver.events() == [second.event.public_id, first.event.public_id]
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_a_held_delivery_goes_out_after_one_retry_interval(account, endpoint, receiver):
    set_global_faults(**{"out-of-order": True})
    set_fast(True)
    held = emit_one(account)
    attempt_delivery(held.pk)
    held.refresh_from_db()
    assert WebhookSettings.load().sweep_at == held.next_retry_at

    assert deliver_due(now=held.created_at + timedelta(seconds=1.5)) == 1
    assert receiver.events() == [held.event.public_id]


def test_redirects_are_not_followed(account, endpoint, receiver):
    receiver.statuses = [302]
    delivery = emit_one(account)

    attempt_delivery(delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.response_status) == ("pending", 302)
    assert delivery.error == "Redirects are not followed."
    assert len(receiver.received) == 1


def test_a_slow_receiver_times_out(account, endpoint, receiver, monkeypatch):
    monkeypatch.setattr(choices, "WEBHOOK_TIMEOUT_SECONDS", 0.2)
    receiver.delay = 0.6
    delivery = emit_one(account)

    attempt_delivery(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.error == "No response within 0.2 s."
    assert delivery.response_status is None


def test_a_refused_connection_is_a_failed_attempt(account, endpoint, receiver):
    receiver.close()
    delivery = emit_one(account)

    attempt_delivery(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.error.startswith("Connection failed")
    assert delivery.status == "pending"


def test_the_target_is_checked_again_before_each_post(account, endpoint, receiver):
    WebhookSettings.objects.update(allow_local_targets=False)
    delivery = emit_one(account)

    attempt_delivery(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.error.startswith("Target refused: The URL must use https://")
    assert receiver.received == []


def test_a_name_that_does_not_resolve_fails_the_delivery_and_says_why(
    account, endpoint, receiver, monkeypatch
):
    def unresolvable(host: str, port: int) -> list[str]:
        raise webhooks_targets.TargetRejected(f"The host name {host} does not resolve.")

    monkeypatch.setattr(webhooks_targets, "resolve", unresolvable)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url="https://offline.example.net/hook")
    delivery = emit_one(account)

    attempt_delivery(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == "pending"
    assert delivery.error == ("Target refused: The host name offline.example.net does not resolve.")
    assert receiver.received == []


def test_a_disabled_endpoint_gets_test_events_but_no_retries(account, endpoint, receiver):
    delivery = emit_one(account)
    WebhookEndpoint.objects.update(status="disabled")
    _, [test_delivery] = emit(account, "generation.succeeded", DATA, test_endpoint=endpoint)

    attempt_delivery(delivery.pk)
    attempt_delivery(test_delivery.pk)

    delivery.refresh_from_db()
    test_delivery.refresh_from_db()
    assert (delivery.status, delivery.error) == (
        "failed",
        "The endpoint is disabled; delivery stopped.",
    )
    assert test_delivery.status == "succeeded"
    assert receiver.events() == [test_delivery.event.public_id]


def test_a_sweep_is_scheduled_once_and_moves_earlier_only(db):
    soon = timezone.now() + timedelta(seconds=30)

    assert schedule_sweep(soon) is True
    assert schedule_sweep(soon + timedelta(seconds=10)) is False
    assert schedule_sweep(soon - timedelta(seconds=10)) is True

    assert WebhookSettings.load().sweep_at == soon - timedelta(seconds=10)


def test_a_sweep_enqueues_a_deferred_task(db, django_capture_on_commit_callbacks):
    at = timezone.now() + timedelta(seconds=30)

    with django_capture_on_commit_callbacks(execute=True):
        schedule_sweep(at)

    task = DBTaskResult.objects.get()
    assert task.task_path.endswith("webhooks_delivery.sweep")
    assert task.run_after == at


def test_without_deferral_no_sweep_is_scheduled(db, settings):
    settings.TASKS = IMMEDIATE

    assert schedule_sweep() is False


def test_a_superseded_sweep_does_nothing(account, endpoint, receiver):
    delivery = emit_one(account)
    schedule_sweep(timezone.now() + timedelta(seconds=30))

    sweep.call("2000-01-01T00:00:00+00:00")

    delivery.refresh_from_db()
    assert delivery.status == "pending"
    assert WebhookSettings.load().sweep_at is not None


def test_a_sweep_delivers_and_schedules_the_next_retry(account, endpoint, receiver):
    receiver.statuses = [500]
    delivery = emit_one(account)
    at = timezone.now()
    schedule_sweep(at)

    sweep.call(WebhookSettings.load().sweep_at.isoformat())

    delivery.refresh_from_db()
    assert delivery.attempt == 1
    assert WebhookSettings.load().sweep_at == delivery.next_retry_at


def test_a_new_generation_schedules_a_sweep_that_emits_its_event(
    account, endpoint, receiver, raw_key, django_capture_on_commit_callbacks
):
    SandboxSettings.objects.update_or_create(pk=1, defaults={"clock_speed": 1_000_000})
    with django_capture_on_commit_callbacks(execute=True):
        task = Api(raw_key).post("/generations", {"model": "z-image", "prompt": "a fox"}).json()
    assert DBTaskResult.objects.get().task_path.endswith("webhooks_delivery.sweep")

    sweep.call(WebhookSettings.load().sweep_at.isoformat())
    attempt_delivery(WebhookDelivery.objects.get().pk)

    [(headers, body)] = receiver.received
    assert signing.verify(endpoint.signing_secret, headers, body)
    event = json.loads(body)
    assert (event["type"], event["data"]["id"], event["data"]["status"]) == (
        "generation.succeeded",
        task["id"],
        "succeeded",
    )


def test_the_delivery_task_makes_one_attempt(account, endpoint, receiver):
    delivery = emit_one(account)

    webhooks_delivery.deliver_webhook.call(delivery.pk)

    assert receiver.events() == [delivery.event.public_id]


def test_a_generation_is_emitted_once(account, endpoint, raw_key, monkeypatch):
    SandboxSettings.objects.update_or_create(pk=1, defaults={"clock_speed": 1_000_000})
    task = Api(raw_key).post("/generations", {"model": "z-image", "prompt": "once"}).json()
    generation = advance(Generation.objects.get(public_id=task["id"]))

    assert WebhookEvent.objects.filter(task_id=task["id"]).count() == 1
    assert webhooks_delivery.emit_generation_event(generation) is None
    with pytest.raises(IntegrityError), transaction.atomic():
        emit(account, "generation.succeeded", DATA, task_id=task["id"])


def test_a_terminal_generation_whose_event_was_lost_is_emitted_again(account, raw_key):
    SandboxSettings.objects.update_or_create(pk=1, defaults={"clock_speed": 1_000_000})
    task = Api(raw_key).post("/generations", {"model": "z-image", "prompt": "lost"}).json()
    advance(Generation.objects.get(public_id=task["id"]))
    WebhookEvent.objects.all().delete()

    webhooks_delivery.emit_generation_events()

    assert WebhookEvent.objects.get().task_id == task["id"]


def test_losing_the_race_to_emit_is_not_an_error(account, endpoint, raw_key, monkeypatch):
    SandboxSettings.objects.update_or_create(pk=1, defaults={"clock_speed": 1_000_000})
    task = Api(raw_key).post("/generations", {"model": "z-image", "prompt": "race"}).json()

    def lose(*args: object, **kwargs: object) -> None:
        raise IntegrityError("another reader emitted it first")

    monkeypatch.setattr(webhooks_delivery, "emit", lose)

    generation = advance(Generation.objects.get(public_id=task["id"]))
    assert webhooks_delivery.emit_generation_event(generation) is None


def test_a_sweep_comes_back_soon_while_generations_run(account, raw_key):
    Api(raw_key).post("/generations", {"model": "z-image", "prompt": "slow"})
    schedule_sweep(timezone.now())

    sweep.call(WebhookSettings.load().sweep_at.isoformat())

    next_at = WebhookSettings.load().sweep_at
    assert timedelta(0) < next_at - timezone.now() <= timedelta(seconds=1)
