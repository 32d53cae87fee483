"""Files: streamed uploads with size checks before reading, temp files cleaned, inline upload from
the generate form, and the duration token carried into a generation."""

import io
import wave
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import StopUpload
from django.core.handlers.wsgi import LimitedStream
from django.test import RequestFactory
from django.urls import reverse

from rivya_dashboard.accounts.models import Role
from rivya_dashboard.console import files, models_catalog
from rivya_dashboard.console.models import Generation, UploadedFile
from rivya_dashboard.console.views.files import file_upload
from rivya_dashboard.rivya.errors import AuthError, InvalidRequest, RateLimited, Unavailable
from rivya_dashboard.sandbox.models import Generation as SandboxGeneration
from rivya_dashboard.vault.models import KeyGrant, LedgerEntry
from tests.png import png_bytes

pytestmark = pytest.mark.django_db


def wav_bytes(seconds: float = 1.0) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * int(8000 * seconds))
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def fast(settings, tmp_path):
    settings.RIVYA_POLL_SPEED = 1000
    settings.RIVYA_SANDBOX_RATE_LIMIT = 10_000
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "upload-tmp")
    Path(settings.FILE_UPLOAD_TEMP_DIR).mkdir()


@pytest.fixture
def temp_dir(settings) -> Path:
    return Path(settings.FILE_UPLOAD_TEMP_DIR)


@pytest.fixture
def operator(clients, members, vault_key):
    models_catalog.do_refresh(vault_key, members[Role.OWNER])
    KeyGrant.objects.create(
        member=members[Role.OPERATOR], key=vault_key, actions=["generate", "upload", "browse"]
    )
    return clients[Role.OPERATOR]


def upload(client, key, content: bytes, *, name="ref.png", kind="image", query=None, **extra):
    data = {"key": str(key.pk), "kind": kind, "upload": SimpleUploadedFile(name, content)}
    url = reverse("file-upload") + (f"?{query}" if query else "")
    return client.post(url, data, **extra)


def test_upload_goes_through_to_the_files_api(operator, vault_key, temp_dir):
    response = upload(operator, vault_key, png_bytes(), query="kind=image")
    stored = UploadedFile.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("file-detail", args=[stored.pk])
    assert stored.remote_id.startswith("file_") and stored.mime_type == "image/png"
    assert stored.url.startswith("http://testserver/sandbox/")
    assert LedgerEntry.objects.filter(operation="files.create", http_status=200).exists()
    assert list(temp_dir.iterdir()) == []


def test_the_list_and_the_detail_show_the_file(operator, vault_key, clients):
    upload(operator, vault_key, png_bytes())
    stored = UploadedFile.objects.get()
    listing = operator.get(reverse("files")).content.decode()
    assert "ref.png" in listing and stored.remote_id in listing and "image/png" in listing
    detail = operator.get(reverse("file-detail", args=[stored.pk])).content.decode()
    assert stored.url in detail
    # A viewer without a history grant sees neither.
    assert "ref.png" not in clients[Role.VIEWER].get(reverse("files")).content.decode()
    assert clients[Role.VIEWER].get(reverse("file-detail", args=[stored.pk])).status_code == 404


def test_a_declared_size_over_the_limit_is_refused_before_reading(operator, vault_key, temp_dir):
    response = upload(
        operator, vault_key, png_bytes(), query="kind=image", CONTENT_LENGTH=str(200 * 1024 * 1024)
    )
    assert response.status_code == 413
    assert "larger than 10.0 MB" in response.content.decode()
    assert not UploadedFile.objects.exists()
    assert list(temp_dir.iterdir()) == []


def test_a_file_over_its_kinds_limit_is_refused_after_streaming(operator, vault_key, temp_dir):
    big = png_bytes() + b"\x00" * (10 * 1024 * 1024)
    response = upload(operator, vault_key, big)
    assert response.status_code == 413
    assert not UploadedFile.objects.exists()
    assert list(temp_dir.iterdir()) == []


def test_the_handler_stops_reading_past_its_cap():
    request = RequestFactory().post("/")
    handler = files.CappedUploadHandler(request, limit=10)
    handler.new_file("upload", "a.png", "image/png", 20)
    handler.receive_data_chunk(b"x" * 8, 0)
    with pytest.raises(StopUpload):
        handler.receive_data_chunk(b"x" * 8, 8)
    assert handler.too_large
    name = handler.file.name
    handler.upload_interrupted()
    assert not Path(name).exists()


class BrokenInput(io.BytesIO):
    """The request body as a browser that goes away halfway sends it."""

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        if not data:
            raise ConnectionResetError("client went away")
        return data


def test_a_browser_that_goes_away_leaves_no_temp_file(operator, vault_key, members, temp_dir):
    body = (
        b'--B\r\nContent-Disposition: form-data; name="upload"; filename="a.png"\r\n'
        + b"Content-Type: image/png\r\n\r\n"
        + png_bytes()
        + b"\x00" * 300_000
    )
    request = RequestFactory().generic(
        "POST", "/files/upload/?kind=image", body, content_type="multipart/form-data; boundary=B"
    )
    request._stream = LimitedStream(BrokenInput(body), len(body) + 5000)
    request.user = members[Role.OPERATOR]
    request.htmx = False
    response = file_upload(request)
    assert response.status_code == 400
    assert not UploadedFile.objects.exists()
    assert list(temp_dir.iterdir()) == []


def test_a_file_of_the_wrong_kind_shows_the_api_message(operator, vault_key):
    response = upload(operator, vault_key, png_bytes(), name="song.wav", kind="audio")
    html = response.content.decode()
    assert response.status_code == 400 and "request id: req_" in html
    assert not UploadedFile.objects.exists()


def test_uploading_needs_the_upload_action(operator, vault_key):
    KeyGrant.objects.update(actions=["generate"])
    response = upload(operator, vault_key, png_bytes())
    assert response.status_code == 400
    assert not UploadedFile.objects.exists()


def test_inline_upload_from_the_generate_form_picks_the_new_file(operator, vault_key):
    url = reverse("generate-upload") + f"?model=nano-banana-2&key={vault_key.pk}&kind=image"
    response = operator.post(
        url,
        {"upload": SimpleUploadedFile("cat.png", png_bytes()), "prompt": "kept"},
        headers={"HX-Request": "true"},
    )
    html = response.content.decode()
    stored = UploadedFile.objects.get()
    assert response.status_code == 200 and 'id="reference-picker"' in html
    assert f'value="{stored.pk}" checked' in html
    submit = operator.post(
        reverse("generate-submit"),
        {
            "model": "nano-banana-2",
            "key": str(vault_key.pk),
            "nonce": "with-ref",
            "prompt": "restyle this",
            "reference_files": [str(stored.pk)],
        },
    )
    assert submit.status_code == 302
    job = Generation.objects.get()
    items = job.params["referenceMediaItems"]
    assert items == [
        {"url": stored.url, "kind": "image", "name": "cat.png", "mimeType": "image/png"}
    ]
    assert SandboxGeneration.objects.count() == 1


def test_inline_upload_refuses_a_kind_the_model_does_not_take(operator, vault_key):
    url = reverse("generate-upload") + f"?model=nano-banana-2&key={vault_key.pk}&kind=audio"
    response = operator.post(url, {"upload": SimpleUploadedFile("a.wav", wav_bytes())})
    assert response.status_code == 400
    assert not UploadedFile.objects.exists()


def test_audio_references_carry_their_duration_token(operator, vault_key):
    url = (
        reverse("generate-upload")
        + f"?model=demo-requires-files-audio&key={vault_key.pk}&kind=audio"
    )
    operator.post(url, {"upload": SimpleUploadedFile("voice.wav", wav_bytes(1.5))})
    stored = UploadedFile.objects.get()
    assert stored.duration_token and stored.duration_seconds == pytest.approx(1.5)
    item = stored.as_reference_item()
    assert item["durationToken"] == stored.duration_token and item["durationSeconds"] == 1.5


def test_a_reference_of_another_kind_is_refused_by_the_form(operator, vault_key):
    url = (
        reverse("generate-upload")
        + f"?model=demo-requires-files-audio&key={vault_key.pk}&kind=audio"
    )
    operator.post(url, {"upload": SimpleUploadedFile("voice.wav", wav_bytes())})
    audio = UploadedFile.objects.get()
    response = operator.post(
        reverse("generate-submit"),
        {
            "model": "nano-banana-2",
            "key": str(vault_key.pk),
            "nonce": "n",
            "prompt": "x",
            "reference_files": [str(audio.pk)],
        },
    )
    assert response.status_code == 400
    assert not Generation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_announced_size_relays_the_body_while_it_arrives(operator, vault_key, temp_dir):
    content = png_bytes() + b"\x00" * 600_000
    query = f"kind=image&key={vault_key.pk}&size={len(content)}"
    response = upload(operator, vault_key, content, query=query)
    stored = UploadedFile.objects.get()
    assert response.status_code == 302
    assert stored.size_bytes == len(content) and stored.mime_type == "image/png"
    assert LedgerEntry.objects.filter(operation="files.create", http_status=200).exists()
    assert list(temp_dir.iterdir()) == []


@pytest.mark.django_db(transaction=True)
def test_a_body_that_differs_from_its_announced_size_is_dropped(operator, vault_key):
    content = png_bytes() + b"\x00" * 1000
    for announced in (len(content) + 10, len(content) - 10):
        query = f"kind=image&key={vault_key.pk}&size={announced}"
        response = upload(operator, vault_key, content, query=query)
        assert response.status_code == 400
        assert "cut short" in response.content.decode()
    assert not UploadedFile.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_announced_size_over_the_limit_is_refused_before_reading(operator, vault_key):
    query = f"kind=image&key={vault_key.pk}&size={11 * 1024 * 1024}"
    response = upload(operator, vault_key, png_bytes(), query=query)
    assert response.status_code == 413
    assert not LedgerEntry.objects.filter(operation="files.create").exists()


@pytest.mark.django_db(transaction=True)
def test_a_relayed_file_the_api_refuses_shows_its_message(operator, vault_key, temp_dir):
    content = png_bytes() + b"\x00" * 3_000_000
    query = f"kind=audio&key={vault_key.pk}&size={len(content)}"
    response = upload(operator, vault_key, content, name="song.wav", kind="audio", query=query)
    assert response.status_code == 400
    page = response.content.decode()
    assert "Rivya did not accept this file: content is image/png; audio files must be" in page
    assert "Pick another file. (request id: req_" in page
    assert "<li>file: content" not in page
    assert not UploadedFile.objects.exists()
    assert LedgerEntry.objects.filter(operation="files.create", http_status=400).exists()
    assert list(temp_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("error", "sentence"),
    [
        (AuthError("Key revoked", request_id="req_1"), "Ask an admin to check the key."),
        (Unavailable("Timed out", request_id=""), "Try the upload again in a moment."),
        (RateLimited("Slow down", request_id="req_2"), "Wait a moment, then upload again."),
        (
            InvalidRequest("params.referenceMediaItems[0].url: must be https", request_id="r"),
            "Rivya did not accept this file: must be https. Pick another file. (request id: r)",
        ),
    ],
)
def test_upload_refusals_are_sentences_that_say_what_to_do(error, sentence):
    text = files.refusal_text(error)
    assert sentence in text
    assert text[0].isupper() and ":" not in text.split(" ")[0]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("relayed", [False, True])
def test_an_upload_checks_the_grant_once_under_the_lock(operator, vault_key, grant_checks, relayed):
    content = png_bytes()
    query = f"kind=image&key={vault_key.pk}" + (f"&size={len(content)}" if relayed else "")
    assert upload(operator, vault_key, content, query=query).status_code == 302
    assert [call.get("lock") for call in grant_checks] == [True]
