"""The output cache: only media types, size-capped while streaming, named from our own ids."""

import shutil

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from rivya_dashboard.console import media_cache
from rivya_dashboard.console.models import Generation, Output

pytestmark = pytest.mark.django_db


class FixedAnswer(BaseAdapter):
    """Answers every request with one status, content type and body, in 1 KB chunks."""

    def __init__(self, status: int, content_type: str, body: bytes, length: str = "") -> None:
        super().__init__()
        self.status, self.content_type, self.body, self.length = status, content_type, body, length
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        self.sent.append(request)
        response = requests.Response()
        response.status_code = self.status
        headers = {"Content-Type": self.content_type}
        if self.length:
            headers["Content-Length"] = self.length
        response.headers = CaseInsensitiveDict(headers)
        response.raw = _Chunks(self.body)
        response.request = request
        response.url = request.url
        return response

    def close(self) -> None:
        pass


class _Chunks:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, amount: int, decode_content: bool = True):
        for start in range(0, len(self.body), 1024):
            yield self.body[start : start + 1024]

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


def session_answering(*args, **kwargs) -> tuple[requests.Session, FixedAnswer]:
    adapter = FixedAnswer(*args, **kwargs)
    session = requests.Session()
    session.mount("https://", adapter)
    return session, adapter


@pytest.fixture
def output(members) -> Output:
    job = Generation.objects.create(
        member_name="owner", key_label="k", model_id="z-image", idempotency_key="i"
    )
    return Output.objects.create(
        generation=job, position=0, original_url="https://media.example/../../etc/passwd.png"
    )


def test_an_image_is_cached_under_our_own_name(output):
    session, adapter = session_answering(200, "image/png", b"\x89PNG" + b"x" * 5000)
    media_cache.do_cache_output(output, session)
    assert output.cached_name == f"{output.generation_id}-0.png" and output.error == ""
    assert media_cache.cached_path(output).read_bytes().startswith(b"\x89PNG")
    assert "Authorization" not in adapter.sent[0].headers


def test_a_page_instead_of_media_is_not_kept(output):
    session, _adapter = session_answering(200, "text/html; charset=utf-8", b"<html>")
    media_cache.do_cache_output(output, session)
    assert output.cached_name == "" and "not an image, audio or video" in output.error
    assert not media_cache.cache_dir().exists() or not list(media_cache.cache_dir().iterdir())


def test_a_result_over_the_cap_is_cut_off_and_removed(output, settings):
    settings.RIVYA_MEDIA_MAX_MB = 1
    session, _adapter = session_answering(200, "video/mp4", b"\x00" * (1024 * 1024 + 5000))
    media_cache.do_cache_output(output, session)
    assert output.cached_name == "" and "larger than the cache limit" in output.error
    assert list(media_cache.cache_dir().iterdir()) == []


def test_a_declared_length_over_the_cap_is_refused_before_reading(output, settings):
    settings.RIVYA_MEDIA_MAX_MB = 1
    session, _adapter = session_answering(200, "image/png", b"x", length=str(50 * 1024 * 1024))
    media_cache.do_cache_output(output, session)
    assert "larger than the cache limit" in output.error


def test_an_expired_link_is_reported(output):
    session, _adapter = session_answering(404, "text/plain", b"gone")
    media_cache.do_cache_output(output, session)
    assert "HTTP 404" in output.error and output.cached_name == ""


def test_only_web_addresses_become_outputs(members, api_in_process):
    job = Generation.objects.create(
        member_name="owner", key_label="k", model_id="z-image", idempotency_key="i"
    )
    session, _adapter = session_answering(200, "image/png", b"\x89PNG")
    urls = ["javascript:alert(1)", "https://media.example/a.png", "https://x/" + "a" * 2000]
    outputs = media_cache.fetched_outputs(job, urls, session)
    assert [(o.position, o.original_url) for o in outputs] == [(1, "https://media.example/a.png")]
    assert outputs[0].cached_name == f"{job.pk}-1.png"


def test_a_disk_that_refuses_the_copy_is_reported_not_raised(output, settings, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    settings.MEDIA_ROOT = blocker
    session, _adapter = session_answering(200, "image/png", b"\x89PNG")
    media_cache.do_cache_output(output, session)
    assert output.cached_name == "" and "could not be saved" in output.error


def test_a_result_the_disk_has_no_room_for_is_refused_before_reading(output, settings):
    settings.RIVYA_MEDIA_MIN_FREE_MB = 0
    settings.RIVYA_MEDIA_MAX_MB = 10**9
    media_cache.cache_dir().mkdir(parents=True)
    free = shutil.disk_usage(media_cache.cache_dir()).free
    session, _adapter = session_answering(200, "image/png", b"\x89PNG", length=str(free + 1))
    media_cache.do_cache_output(output, session)
    assert output.cached_name == "" and "disk is nearly full" in output.error
    assert list(media_cache.cache_dir().iterdir()) == []
