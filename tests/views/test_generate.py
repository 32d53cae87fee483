"""The generate page against the in-process sandbox: schema form, cost, idempotent submits,
polling to the end, cached outputs, and every bad input keeping what the member typed."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_htmx.http import HttpResponseStopPolling

from rivya_dashboard.accounts.models import Role, User
from rivya_dashboard.console import generations, media_cache, models_catalog
from rivya_dashboard.console.models import Generation, Output, Status
from rivya_dashboard.console.templatetags.quantities import credits as credits_text
from rivya_dashboard.sandbox import faults
from rivya_dashboard.sandbox.models import Account, SandboxSettings
from rivya_dashboard.sandbox.models import Generation as SandboxGeneration
from rivya_dashboard.vault import crypto, ledger
from rivya_dashboard.vault.grants import GrantRefused
from rivya_dashboard.vault.models import ApiKey, KeyGrant, LedgerEntry
from rivya_dashboard.webhooks import generation_updates, inboxes
from rivya_dashboard.webhooks.models import InboxRequest
from tests.conftest import make_member

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast(settings):
    settings.RIVYA_POLL_SPEED = 1000
    settings.RIVYA_SANDBOX_RATE_LIMIT = 10_000
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}


@pytest.fixture
def catalogue(vault_key, members):
    models_catalog.do_refresh(vault_key, members[Role.OWNER])
    return vault_key


@pytest.fixture
def operator(clients, members, catalogue):
    KeyGrant.objects.create(
        member=members[Role.OPERATOR], key=catalogue, actions=["generate", "browse", "upload"]
    )
    return clients[Role.OPERATOR]


def form_data(key, nonce="nonce-1", **extra):
    return {
        "model": "z-image",
        "key": str(key.pk),
        "nonce": nonce,
        "prompt": "a lighthouse at dusk",
        "p_aspect_ratio": "16:9",
        **extra,
    }


def sandbox_balance() -> int:
    return Account.objects.get().credits


def test_the_form_is_built_from_the_model_schema(operator, catalogue):
    response = operator.get(reverse("generate"), {"model": "elevenlabs-sound-effect-v2"})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="p_duration_seconds"' in html and 'step="0.5"' in html
    assert 'name="p_output_format"' in html and "mp3_44100_128" in html
    assert 'data-max-length="5000"' in html
    assert 'name="nonce"' in html


def test_the_htmx_model_switch_answers_only_the_form(operator, catalogue):
    response = operator.get(
        reverse("generate"), {"model": "suno-music"}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert 'id="generate-form"' in html
    assert "<html" not in html
    assert 'name="p_instrumental"' in html


def test_cost_shows_estimate_balance_and_after(operator, catalogue):
    response = operator.get(
        reverse("generate-estimate"), {"model": "nano-banana-2", "key": catalogue.pk}
    )
    text = response.content.decode()
    assert response.status_code == 200
    assert "5 credits" in text  # base credits of nano-banana-2
    assert "1,000" in text and "995" in text  # grouped for the locale


def test_the_cost_box_shows_the_operators_cap_and_what_is_left(operator, catalogue, members):
    KeyGrant.objects.filter(member=members[Role.OPERATOR]).update(daily_cap=8)
    ledger_spend = operator.post(reverse("generate-submit"), form_data(catalogue))
    assert ledger_spend.status_code == 302  # 1 credit reserved today
    response = operator.get(
        reverse("generate-estimate"), {"model": "nano-banana-2", "key": catalogue.pk}
    )
    text = response.content.decode()
    assert "Your daily cap" in text and "7 credits left of 8" in text
    tight = operator.get(
        reverse("generate-estimate"), {"model": "veo3-1-fast", "key": catalogue.pk}
    ).content.decode()
    assert "This job would pass your cap" in tight


def test_submit_creates_one_job_and_polls_it_to_the_end(operator, catalogue, members):
    response = operator.post(reverse("generate-submit"), form_data(catalogue))
    job = Generation.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "generation", args=[job.pk]
    )
    assert job.status == Status.QUEUED and job.remote_id.startswith("task_")
    assert job.client_request_id == f"console-generation-{job.pk}"
    assert job.params == {"aspect_ratio": "16:9"}
    assert job.estimate_credits == 1 and job.member == members[Role.OPERATOR]
    assert sandbox_balance() == 999
    SandboxSettings.objects.update(clock_speed=1000)
    SandboxGeneration.objects.update(created_at=timezone.now() - timedelta(seconds=60))
    generations.do_poll(job.pk, job.poll_count)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED and job.final_credits == 1 and not job.cost_differs
    output = Output.objects.get(generation=job)
    assert output.cached_name and output.content_type == "image/png"
    media = operator.get(reverse("generation-output", args=[job.pk, 0]))
    assert media.status_code == 200 and media["Content-Type"] == "image/png"
    assert media["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert b"".join(media.streaming_content).startswith(b"\x89PNG")
    create = LedgerEntry.objects.get(operation="generations.create")
    assert create.credits_final == 1 and create.idempotency_key == job.idempotency_key


def test_a_double_submit_yields_the_same_job_and_one_charge(operator, catalogue):
    first = operator.post(reverse("generate-submit"), form_data(catalogue))
    second = operator.post(reverse("generate-submit"), form_data(catalogue))
    assert first["Location"] == second["Location"]
    assert Generation.objects.count() == 1
    assert SandboxGeneration.objects.count() == 1
    assert sandbox_balance() == 999


def test_a_double_click_at_the_cap_lands_on_the_same_job(operator, catalogue):
    KeyGrant.objects.update(daily_cap=1)
    first = operator.post(reverse("generate-submit"), form_data(catalogue))
    second = operator.post(reverse("generate-submit"), form_data(catalogue))
    assert second.status_code == 302 and first["Location"] == second["Location"]
    assert SandboxGeneration.objects.count() == 1


def test_a_cap_reached_by_a_concurrent_submit_leaves_no_row(operator, catalogue, monkeypatch):
    def refuse(*args, **kwargs):
        raise GrantRefused("cap reached meanwhile")

    # The grant passes the first check, then fails the one taken under the grant's lock.
    monkeypatch.setattr(ledger, "check_grant", refuse)
    response = operator.post(reverse("generate-submit"), form_data(catalogue))
    assert response.status_code == 403 and "cap reached meanwhile" in response.content.decode()
    assert not Generation.objects.exists() and not SandboxGeneration.objects.exists()


def test_the_same_nonce_from_another_member_is_another_job(operator, catalogue, clients):
    operator.post(reverse("generate-submit"), form_data(catalogue))
    clients[Role.OWNER].post(reverse("generate-submit"), form_data(catalogue))
    assert Generation.objects.count() == 2


def test_prompt_over_the_limit_keeps_the_text_and_creates_nothing(operator, catalogue):
    long_prompt = "word " * 300
    response = operator.post(reverse("generate-submit"), form_data(catalogue, prompt=long_prompt))
    html = response.content.decode()
    assert response.status_code == 400
    assert "Shorten the prompt to 1000 characters" in html
    assert long_prompt.strip() in html
    assert not Generation.objects.exists() and not SandboxGeneration.objects.exists()


@pytest.mark.parametrize("blank", ["   ", "\n\t  \n"])
def test_a_prompt_of_only_spaces_is_refused_and_charges_nothing(operator, catalogue, blank):
    response = operator.post(reverse("generate-submit"), form_data(catalogue, prompt=blank))
    assert response.status_code == 400
    assert "spaces and blank lines alone are not one" in response.content.decode()
    assert not Generation.objects.exists() and not SandboxGeneration.objects.exists()
    assert sandbox_balance() == 1000


def test_value_outside_the_options_is_refused_per_field(operator, catalogue):
    response = operator.post(reverse("generate-submit"), form_data(catalogue, p_aspect_ratio="7:1"))
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not Generation.objects.exists()


def test_insufficient_credits_shows_the_request_id_and_leaves_no_row(operator, catalogue):
    Account.objects.update(credits=0)
    response = operator.post(reverse("generate-submit"), form_data(catalogue))
    html = response.content.decode()
    assert response.status_code == 400
    assert "Not enough credits" in html and "request id: req_" in html
    assert "a lighthouse at dusk" in html
    assert 'value="nonce-1"' not in html  # a refused request gets a fresh idempotency key
    assert not Generation.objects.exists()


@pytest.mark.parametrize(
    ("status", "message", "keeps_nonce"),
    [
        (503, "Rivya cannot be reached", True),
        (429, "Rivya is limiting requests on this key", True),
    ],
)
def test_api_down_or_rate_limited_says_what_to_do(
    operator, catalogue, status, message, keeps_nonce
):
    faults.set_global_faults({"status": status})
    response = operator.post(reverse("generate-submit"), form_data(catalogue))
    html = response.content.decode()
    assert message in html and "request id: req_" in html
    assert ('value="nonce-1"' in html) is keeps_nonce
    assert not Generation.objects.exists()
    assert LedgerEntry.objects.filter(operation="generations.create", http_status=status).exists()


def test_a_submit_retried_after_an_outage_is_charged_once(operator, catalogue):
    faults.set_global_faults({"status": 503})
    operator.post(reverse("generate-submit"), form_data(catalogue))
    faults.set_global_faults({})
    operator.post(reverse("generate-submit"), form_data(catalogue))
    job = Generation.objects.get()
    SandboxSettings.objects.update(clock_speed=1000)
    SandboxGeneration.objects.update(created_at=timezone.now() - timedelta(seconds=60))
    generations.do_poll(job.pk, job.poll_count)
    attempts = LedgerEntry.objects.filter(operation="generations.create").order_by("at", "pk")
    assert attempts[0].http_status == 503 and 200 <= attempts[1].http_status < 300
    assert [entry.credits_final for entry in attempts] == [0, 1]


def test_expired_grant_is_refused_before_the_api_is_called(operator, catalogue, members):
    KeyGrant.objects.update(expires_at=timezone.now() - timedelta(days=1))
    response = operator.post(reverse("generate-submit"), form_data(catalogue))
    assert response.status_code == 403
    assert "expired on" in response.content.decode()
    assert not SandboxGeneration.objects.exists()
    assert not LedgerEntry.objects.filter(operation="generations.create").exists()


def test_a_grant_without_generate_cannot_submit(operator, catalogue):
    KeyGrant.objects.update(actions=["browse"])
    response = operator.post(reverse("generate-submit"), form_data(catalogue))
    assert response.status_code == 403
    assert "does not include" in response.content.decode()
    assert not SandboxGeneration.objects.exists()


def test_a_failed_job_shows_its_error(operator, catalogue):
    operator.post(reverse("generate-submit"), form_data(catalogue, prompt="boom [[fail]]"))
    job = Generation.objects.get()
    SandboxGeneration.objects.update(created_at=timezone.now() - timedelta(hours=1))
    generations.do_poll(job.pk, 0)
    job.refresh_from_db()
    assert job.status == Status.FAILED and job.error_code == "generation_failed"
    page = operator.get(reverse("generation", args=[job.pk])).content.decode()
    assert "generation_failed" in page and "hx-trigger" not in page
    assert sandbox_balance() == 1000  # refunded


def status_card(client, job: Generation):
    return client.get(reverse("generation-status", args=[job.pk]), headers={"HX-Request": "true"})


def test_the_status_card_polls_at_the_workers_pace_and_stops_at_the_end(operator, catalogue):
    operator.post(reverse("generate-submit"), form_data(catalogue))
    job = Generation.objects.get()
    Generation.objects.update(next_poll_at=timezone.now() + timedelta(seconds=7))
    page = operator.get(reverse("generation", args=[job.pk])).content.decode()
    status_url = reverse("generation-status", args=[job.pk])
    assert f'hx-get="{status_url}" hx-trigger="every 8s"' in page
    running = status_card(operator, job)
    assert running.status_code == 200 and "<html" not in running.content.decode()
    assert 'hx-trigger="every 8s"' in running.content.decode()
    Generation.objects.update(next_poll_at=timezone.now() + timedelta(minutes=5))
    assert 'hx-trigger="every 10s"' in status_card(operator, job).content.decode()

    SandboxGeneration.objects.update(created_at=timezone.now() - timedelta(hours=1))
    generations.do_poll(job.pk, job.poll_count)
    done = status_card(operator, job)
    html = done.content.decode()
    job.refresh_from_db()
    # django-htmx's stop-polling answer, and the card swapped in without a trigger of its own.
    assert done.status_code == HttpResponseStopPolling.status_code == 286
    assert "hx-trigger" not in html and 'data-job-finished="Succeeded"' in html
    assert f"{job.finished_at:%Y-%m-%d %H:%M:%S}" in html
    assert "<dd data-final-credits>1</dd>" in html
    assert reverse("generation-output", args=[job.pk, 0]) in html
    assert "hx-trigger" not in operator.get(reverse("generation", args=[job.pk])).content.decode()


def test_the_status_card_is_only_for_members_who_see_the_job(operator, catalogue, clients):
    operator.post(reverse("generate-submit"), form_data(catalogue))
    job = Generation.objects.get()
    assert status_card(clients["outsider"], job)["HX-Redirect"].startswith(reverse("login"))
    make_member(Role.OPERATOR, "other")
    other = Client()
    other.force_login(User.objects.get(username="other"))
    assert status_card(other, job).status_code == 404


def test_a_duplicate_poll_task_does_nothing(operator, catalogue):
    operator.post(reverse("generate-submit"), form_data(catalogue))
    job = Generation.objects.get()
    assert generations.do_poll(job.pk, 0) is not None
    assert generations.do_poll(job.pk, 0) is None


def test_stalled_jobs_are_picked_up_again(operator, catalogue):
    operator.post(reverse("generate-submit"), form_data(catalogue))
    Generation.objects.update(next_poll_at=timezone.now() - timedelta(hours=1))
    assert generations.do_resume_stalled() == 1
    job = Generation.objects.get()
    assert job.next_poll_at > timezone.now() - timedelta(seconds=1)
    assert generations.do_resume_stalled() == 0


def test_tracking_stops_after_the_limit(operator, catalogue, settings):
    settings.RIVYA_POLL_MAX_MINUTES = 1
    operator.post(reverse("generate-submit"), form_data(catalogue))
    Generation.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    generations.do_poll(Generation.objects.get().pk, 0)
    job = Generation.objects.get()
    assert job.status == Status.LOST and "Stopped checking" in job.error_message


def test_poll_back_off_follows_the_contract(settings):
    settings.RIVYA_POLL_SPEED = 1
    delays = [generations.poll_delay(n, "image") for n in range(5)]
    assert delays[0] == 2.5 and delays[1] == 5.0
    assert all(5 <= d <= 10 for d in delays[1:]) and delays[-1] == 10
    assert generations.poll_delay(10, "video") == 30


def test_copy_as_curl_has_a_placeholder_not_the_key(operator, catalogue, sandbox_key):
    operator.post(reverse("generate-submit"), form_data(catalogue))
    job = Generation.objects.get()
    page = operator.get(reverse("generation", args=[job.pk])).content.decode()
    assert "$RIVYA_API_KEY" in page and sandbox_key not in page
    assert f"Idempotency-Key: {job.idempotency_key}" in page


def test_run_again_and_edit_and_run(operator, catalogue):
    operator.post(reverse("generate-submit"), form_data(catalogue))
    job = Generation.objects.get()
    rerun = operator.post(reverse("generation-rerun", args=[job.pk]), {"nonce": "again-1"})
    operator.post(reverse("generation-rerun", args=[job.pk]), {"nonce": "again-1"})
    assert Generation.objects.count() == 2
    new = Generation.objects.exclude(pk=job.pk).get()
    assert rerun["Location"] == reverse("generation", args=[new.pk])
    assert new.prompt == job.prompt and new.params == job.params
    edit = operator.get(reverse("generate"), {"from": job.pk}).content.decode()
    assert "a lighthouse at dusk" in edit
    assert '<option value="16:9" selected>' in edit


def test_run_again_never_switches_to_another_key(operator, catalogue):
    operator.post(reverse("generate-submit"), form_data(catalogue))
    job = Generation.objects.get()
    Generation.objects.update(key=None)  # its key was deleted since
    response = operator.post(reverse("generation-rerun", args=[job.pk]), {"nonce": "again-1"})
    assert response["Location"] == reverse("generation", args=[job.pk])
    assert Generation.objects.count() == 1 and SandboxGeneration.objects.count() == 1


def test_delete_removes_the_job_and_its_cached_files(operator, catalogue):
    operator.post(reverse("generate-submit"), form_data(catalogue))
    job = Generation.objects.get()
    SandboxGeneration.objects.update(created_at=timezone.now() - timedelta(hours=1))
    generations.do_poll(job.pk, 0)
    path = generations.media_cache.cached_path(Output.objects.get())
    assert path.is_file()
    response = operator.post(reverse("generation-delete", args=[job.pk]))
    assert response.status_code == 302
    assert not Generation.objects.exists() and not path.exists()


def test_another_operator_cannot_delete_or_see_a_job(operator, catalogue, members):
    from tests.conftest import make_member

    operator.post(reverse("generate-submit"), form_data(catalogue))
    job = Generation.objects.get()
    other = make_member(Role.OPERATOR, "other-operator")
    from django.test import Client

    SandboxSettings.objects.update(clock_speed=1000)
    SandboxGeneration.objects.update(created_at=timezone.now() - timedelta(seconds=60))
    generations.do_poll(job.pk, job.poll_count)
    assert operator.get(reverse("generation-output", args=[job.pk, 0])).status_code == 200
    client = Client()
    client.force_login(other)
    assert client.get(reverse("generation", args=[job.pk])).status_code == 404
    assert client.get(reverse("generation-output", args=[job.pk, 0])).status_code == 404
    assert client.post(reverse("generation-delete", args=[job.pk])).status_code == 404


def test_side_by_side_submits_each_model_once(operator, catalogue):
    data = {
        "nonce": "cmp-1",
        "key": str(catalogue.pk),
        "models": ["z-image", "suno-music"],
        "prompt": "rain on a tin roof",
    }
    first = operator.post(reverse("side-by-side"), data)
    second = operator.post(reverse("side-by-side"), data)
    assert first.status_code == 302 and first["Location"] == second["Location"]
    jobs = Generation.objects.all()
    assert {job.model_id for job in jobs} == {"z-image", "suno-music"}
    assert len({job.batch for job in jobs}) == 1
    page = operator.get(first["Location"]).content.decode()
    assert page.count('class="compare-column"') == 2
    assert '<p class="compare-prompt" dir="auto">rain on a tin roof</p>' in page
    assert "Total so far: 13 credits" in page  # estimates: z-image 1 + suno-music 12
    SandboxSettings.objects.update(clock_speed=1000)
    SandboxGeneration.objects.update(created_at=timezone.now() - timedelta(seconds=600))
    for job in jobs:
        generations.do_poll(job.pk, job.poll_count)
    settled = operator.get(first["Location"]).content.decode()
    total = sum(job.final_credits for job in Generation.objects.all())
    assert f"Total cost: {credits_text(total)}." in settled


def test_side_by_side_needs_two_or_three_models(operator, catalogue):
    data = {"nonce": "c", "key": str(catalogue.pk), "models": ["z-image"], "prompt": "x"}
    response = operator.post(reverse("side-by-side"), data)
    assert response.status_code == 400 and "Pick two or three" in response.content.decode()


def test_a_submit_starts_one_housekeeping_chain(operator, catalogue, settings):
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    operator.post(reverse("generate-submit"), form_data(catalogue, nonce="a"))
    operator.post(reverse("generate-submit"), form_data(catalogue, nonce="b"))
    paths = list(DBTaskResult.objects.values_list("task_path", flat=True))
    assert paths.count("rivya_dashboard.console.tasks.housekeeping") == 1
    assert paths.count("rivya_dashboard.console.tasks.poll_generation") == 2


def test_a_second_housekeeping_chain_ends_itself(settings):
    from django_tasks_db.models import DBTaskResult

    from rivya_dashboard.console import tasks

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    tasks.ensure_housekeeping()
    tasks.housekeeping.call()  # a second chain, started by a racing page load
    paths = list(DBTaskResult.objects.values_list("task_path", flat=True))
    assert paths.count("rivya_dashboard.console.tasks.housekeeping") == 1


def test_a_model_that_is_not_available_is_refused(operator, catalogue):
    data = form_data(catalogue, model="demo-coming-soon-video")
    response = operator.post(reverse("generate-submit"), data)
    assert response.status_code == 400
    assert "cannot be run now" in response.content.decode()
    assert not SandboxGeneration.objects.exists()


def finished_remote(job: Generation, catalogue) -> dict:
    """The sandbox's own answer for a job it has finished: what a poll or an event carries."""
    SandboxSettings.objects.update(clock_speed=1000)
    SandboxGeneration.objects.update(created_at=timezone.now() - timedelta(hours=1))
    return catalogue.client().get_generation(job.remote_id)


def test_the_job_turns_succeeded_only_together_with_its_outputs(operator, catalogue, monkeypatch):
    operator.post(reverse("generate-submit"), form_data(catalogue))
    job = Generation.objects.get()
    seen_while_downloading = []
    download = media_cache.do_cache_output

    def watched(output, session):
        seen_while_downloading.append(Generation.objects.get(pk=job.pk).status)
        return download(output, session)

    monkeypatch.setattr(media_cache, "do_cache_output", watched)
    SandboxGeneration.objects.update(created_at=timezone.now() - timedelta(hours=1))
    generations.do_poll(job.pk, job.poll_count)
    assert seen_while_downloading == [Status.QUEUED]
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED and job.outputs.get().cached_name


def test_a_poll_and_a_webhook_end_a_job_the_same_way(operator, catalogue, members):
    operator.post(reverse("generate-submit"), form_data(catalogue, nonce="by-poll"))
    operator.post(reverse("generate-submit"), form_data(catalogue, nonce="by-webhook"))
    by_poll, by_webhook = Generation.objects.order_by("pk")
    remote = finished_remote(by_webhook, catalogue)
    generations.do_poll(by_poll.pk, by_poll.poll_count)
    inbox = inboxes.do_create_inbox(members[Role.ADMIN], name="Jobs", key=catalogue)
    row = InboxRequest.objects.create(
        inbox=inbox, method="POST", verdict="verified", response_status=200
    )
    assert generation_updates.do_apply_event(row.pk, remote) is not None

    def end(job: Generation) -> tuple:
        job.refresh_from_db()
        output = job.outputs.get()
        create = LedgerEntry.objects.get(
            operation="generations.create", idempotency_key=job.idempotency_key
        )
        return (
            job.status,
            job.final_credits,
            job.next_poll_at,
            output.content_type,
            bool(output.cached_name),
            create.credits_final,
        )

    assert end(by_poll) == end(by_webhook) == (Status.SUCCEEDED, 1, None, "image/png", True, 1)
    row.refresh_from_db()
    assert row.generation == by_webhook and row.generation_applied_at is not None


def test_the_end_is_applied_once_whichever_path_comes_second(operator, catalogue):
    operator.post(reverse("generate-submit"), form_data(catalogue))
    job = Generation.objects.get()
    remote = finished_remote(job, catalogue)
    assert generations.finish(Generation.objects.get(pk=job.pk), remote) is True
    late = {**remote, "status": "failed", "error": {"code": "late"}}
    assert generations.finish(Generation.objects.get(pk=job.pk), late) is False
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED and job.error_code == "" and job.outputs.count() == 1


def test_a_poll_that_was_out_when_a_webhook_ended_the_job_keeps_the_end(
    operator, catalogue, monkeypatch
):
    operator.post(reverse("generate-submit"), form_data(catalogue))
    job = Generation.objects.get()
    remote = finished_remote(job, catalogue)

    def webhook_wins_meanwhile(generation, client):
        generations.finish(Generation.objects.get(pk=job.pk), remote)
        return {**remote, "status": "processing"}

    monkeypatch.setattr(generations, "_fetch_remote", webhook_wins_meanwhile)
    generations.do_poll(job.pk, job.poll_count)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED and job.next_poll_at is None


def console_queries(context: CaptureQueriesContext) -> list[str]:
    """The console's own queries: the in-process sandbox answering the poll runs its own, and the
    test's transaction turns every atomic block into savepoints."""
    return [
        q["sql"]
        for q in context.captured_queries
        if "sandbox_" not in q["sql"] and "SAVEPOINT" not in q["sql"]
    ]


def test_a_poll_decrypts_the_key_once_and_never_asks_the_catalogue(
    operator, catalogue, monkeypatch
):
    operator.post(reverse("generate-submit"), form_data(catalogue))
    job = Generation.objects.get()
    assert job.category == "image"
    decrypted = []
    decrypt = crypto.decrypt
    monkeypatch.setattr(
        crypto, "decrypt", lambda *args, **kwargs: decrypted.append(1) or decrypt(*args, **kwargs)
    )
    with CaptureQueriesContext(connection) as running_poll:
        generations.do_poll(job.pk, job.poll_count)
    job.refresh_from_db()
    assert Status(job.status) in (Status.QUEUED, Status.PROCESSING) and decrypted == [1]
    SandboxGeneration.objects.update(created_at=timezone.now() - timedelta(hours=1))
    with CaptureQueriesContext(connection) as final_poll:
        generations.do_poll(job.pk, job.poll_count)
    assert Generation.objects.get().status == Status.SUCCEEDED and decrypted == [1, 1]
    for queries in (console_queries(running_poll), console_queries(final_poll)):
        assert not [sql for sql in queries if "console_cataloguemodel" in sql]
    # Measured before this change: 8 and 13 (with a second decryption and a catalogue query).
    assert len(console_queries(running_poll)) <= 7
    assert len(console_queries(final_poll)) <= 11


def test_a_submit_checks_the_grant_once_with_one_cap_sum(operator, catalogue, grant_checks):
    KeyGrant.objects.update(daily_cap=50, monthly_cap=500)
    with CaptureQueriesContext(connection) as submit:
        response = operator.post(reverse("generate-submit"), form_data(catalogue))
    assert response.status_code == 302
    assert [call.get("lock") for call in grant_checks] == [True]
    sums = [q["sql"] for q in submit.captured_queries if "SUM(" in q["sql"].upper()]
    assert len([sql for sql in sums if "vault_ledgerentry" in sql]) == 1
    # The member is loaded once (by the session); the check under the lock does not reload it.
    members_loaded = [q for q in console_queries(submit) if q.startswith('SELECT "accounts_user"')]
    assert len(members_loaded) == 1


def test_a_key_that_is_not_yours_is_never_replaced_by_another(operator, catalogue, members):
    other = ApiKey.objects.create(
        label="Elsewhere", environment="sandbox", base_url=catalogue.base_url
    )
    for key_id in (str(other.pk), "999", "x"):
        submit = operator.post(reverse("generate-submit"), {**form_data(catalogue), "key": key_id})
        assert submit.status_code == 403
        assert "a lighthouse at dusk" in submit.content.decode()
        estimate = operator.get(reverse("generate-estimate"), {"model": "z-image", "key": key_id})
        assert "1,000" not in estimate.content.decode()
        upload = operator.post(
            reverse("generate-upload") + f"?model=z-image&kind=image&key={key_id}"
        )
        assert upload.status_code == 400
    assert (
        "no grant for the key"
        in operator.post(
            reverse("generate-submit"), {**form_data(catalogue), "key": str(other.pk)}
        ).content.decode()
    )
    assert not Generation.objects.exists() and not SandboxGeneration.objects.exists()
    page = operator.get(reverse("generate"), {"key": "999"}).content.decode()
    assert "not one you may generate with" in page


def test_notify_me_is_offered_only_while_the_job_runs(operator, catalogue):
    operator.post(reverse("generate-submit"), form_data(catalogue))
    job = Generation.objects.get()
    assert "data-notify" in operator.get(reverse("generation", args=[job.pk])).content.decode()
    finished_remote(job, catalogue)
    generations.do_poll(job.pk, job.poll_count)
    assert "data-notify" not in operator.get(reverse("generation", args=[job.pk])).content.decode()


def test_a_result_opens_in_a_viewer_on_the_job_page_with_download_and_original_link(
    operator, catalogue
):
    operator.post(reverse("generate-submit"), form_data(catalogue))
    job = Generation.objects.get()
    SandboxSettings.objects.update(clock_speed=1000)
    SandboxGeneration.objects.update(created_at=timezone.now() - timedelta(seconds=60))
    generations.do_poll(job.pk, job.poll_count)
    output = Output.objects.get(generation=job)
    media = reverse("generation-output", args=[job.pk, 0])
    html = operator.get(reverse("generation", args=[job.pk])).content.decode()
    assert f'<a href="{media}">' not in html  # no bare file outside the console
    assert f'<a href="#result-{job.pk}-0"><img' in html
    assert f'id="result-{job.pk}-0" role="dialog"' in html
    assert f'href="{media}" download>Download</a>' in html
    assert f'href="{output.original_url}"' in html
