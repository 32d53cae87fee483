"""A full media disk (issue 18 §2): the job still succeeds and is charged once, the output that
could not be kept says why and links the provider's original, and no page shows a broken image.

The jobs run against the in-process sandbox. The disk fills for one output only: its partial file
is a link to /dev/full, so the kernel itself answers that write with ENOSPC while every other
write (the job's other output, the database) goes on as usual.
"""

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from rivya_dashboard.accounts.models import Role
from rivya_dashboard.console import generations, media_cache, models_catalog
from rivya_dashboard.console.models import Generation, Output, Status
from rivya_dashboard.sandbox.models import Account, SandboxSettings
from rivya_dashboard.sandbox.models import Generation as SandboxGeneration
from rivya_dashboard.vault.models import LedgerEntry

pytestmark = pytest.mark.django_db

DISK_FULL = "The console's disk is full; the copy was not kept. Open the original link."
NEARLY_FULL = "The console's disk is nearly full; the copy was not kept. Open the original link."


@pytest.fixture(autouse=True)
def fast(settings):
    settings.RIVYA_POLL_SPEED = 1000
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}


@pytest.fixture
def job(owner_client, vault_key, members) -> Generation:
    """A submitted image job, finished at the sandbox but not yet in the console."""
    models_catalog.do_refresh(vault_key, members[Role.OWNER])
    owner_client.post(
        reverse("generate-submit"),
        {"model": "z-image", "key": str(vault_key.pk), "nonce": "n-1", "prompt": "a harbour"},
    )
    SandboxSettings.objects.update(clock_speed=1000)
    SandboxGeneration.objects.update(created_at=timezone.now() - timedelta(hours=1))
    return Generation.objects.get()


def finished_with_two_outputs(job: Generation) -> dict:
    """The sandbox's answer for the finished job, its one result listed twice: two outputs."""
    remote = job.key.client().get_generation(job.remote_id)
    url = remote["result"]["primary_url"]
    remote["result"]["urls"] = [url, url]
    return remote


def fill_the_disk_for(job: Generation, position: int) -> Path:
    partial = media_cache.cache_dir() / f"{job.pk}-{position}.png.part"
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.symlink_to("/dev/full")
    return partial


@pytest.fixture
def finished_on_a_full_disk(job, settings) -> Generation:
    # Only the write fails here, not the free-space guard (covered below).
    settings.RIVYA_MEDIA_MIN_FREE_MB = 0
    fill_the_disk_for(job, 0)
    assert generations.finish(job, finished_with_two_outputs(job))
    job.refresh_from_db()
    return job


def test_the_disk_filling_during_the_write_costs_one_output_not_the_job(finished_on_a_full_disk):
    job = finished_on_a_full_disk
    lost, kept = Output.objects.filter(generation=job).order_by("position")

    assert lost.cached_name == "" and lost.error == DISK_FULL
    assert lost.original_url.startswith("http")
    assert kept.cached_name and kept.error == ""
    assert media_cache.cached_path(kept).read_bytes().startswith(b"\x89PNG")
    assert sorted(path.name for path in media_cache.cache_dir().iterdir()) == [kept.cached_name]
    assert job.status == Status.SUCCEEDED and job.final_credits == 1
    create = LedgerEntry.objects.get(operation="generations.create")
    assert create.credits_final == 1
    assert Account.objects.get().credits == 999


def test_the_job_page_gives_the_reason_and_the_original_link(finished_on_a_full_disk, clients):
    job = finished_on_a_full_disk
    lost, kept = Output.objects.filter(generation=job).order_by("position")

    page = clients[Role.OWNER].get(reverse("generation", args=[job.pk])).content.decode()

    assert "The console&#x27;s disk is full; the copy was not kept." in page
    assert f'<a href="{lost.original_url}" rel="noreferrer noopener"' in page
    lost_media = reverse("generation-output", args=[job.pk, lost.position])
    kept_media = reverse("generation-output", args=[job.pk, kept.position])
    assert f'src="{lost_media}"' not in page and f'id="result-{job.pk}-0"' not in page
    assert f'src="{kept_media}"' in page and f'id="result-{job.pk}-1"' in page
    assert clients[Role.OWNER].get(lost_media).status_code == 404


def test_the_gallery_shows_only_what_was_kept(finished_on_a_full_disk, clients):
    job = finished_on_a_full_disk

    page = clients[Role.OWNER].get(reverse("gallery")).content.decode()

    assert f'src="{reverse("generation-output", args=[job.pk, 1])}"' in page
    assert f'src="{reverse("generation-output", args=[job.pk, 0])}"' not in page


def test_a_disk_within_the_reserve_keeps_no_copy(job, settings):
    free_mb = shutil.disk_usage(settings.MEDIA_ROOT.parent).free // (1024 * 1024)
    settings.RIVYA_MEDIA_MIN_FREE_MB = free_mb + 1024

    assert generations.finish(job, finished_with_two_outputs(job))

    job.refresh_from_db()
    outputs = Output.objects.filter(generation=job)
    assert job.status == Status.SUCCEEDED
    assert [(o.cached_name, o.error) for o in outputs] == [("", NEARLY_FULL)] * 2
    assert not any(media_cache.cache_dir().iterdir())


def test_history_marks_the_job_whose_copy_was_not_kept(finished_on_a_full_disk, clients):
    job = finished_on_a_full_disk
    owner = clients[Role.OWNER]

    listed = owner.get(reverse("history")).content.decode()
    row = owner.get(reverse("generation-row", args=[job.pk]), headers={"HX-Request": "true"})
    Output.objects.filter(generation=job, position=0).update(cached_name="kept-later.png")
    all_kept = owner.get(reverse("history")).content.decode()

    assert listed.count("copy not kept") == 1
    assert "copy not kept" in row.content.decode()
    assert "copy not kept" not in all_kept
