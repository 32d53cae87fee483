"""POST /files and GET /files/{fileId} (§8): streamed uploads, magic bytes, limits, expiry."""

import re
import struct
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import StopUpload
from django.utils import timezone

from rivya_dashboard.sandbox import choices
from rivya_dashboard.sandbox.files import LimitedUploadHandler, detect_mime
from rivya_dashboard.sandbox.keys import issue_key
from rivya_dashboard.sandbox.media import prompt_png, prompt_wav, uploads_dir
from rivya_dashboard.sandbox.models import UploadedFile
from tests.sandbox.conftest import Api, error_code

SAMPLE_WEBM = Path(choices.__file__).parent / "data" / "sample.webm"


def mp4_bytes(seconds: int = 3, brand: bytes = b"isom") -> bytes:
    ftyp = struct.pack(">I", 16) + b"ftyp" + brand + b"\x00\x00\x02\x00"
    mvhd_body = b"\x00\x00\x00\x00" + struct.pack(">IIII", 0, 0, 1000, seconds * 1000) + bytes(80)
    mvhd = struct.pack(">I", 8 + len(mvhd_body)) + b"mvhd" + mvhd_body
    moov = struct.pack(">I", 8 + len(mvhd)) + b"moov" + mvhd
    return ftyp + moov


def upload(api: Api, name: str, content: bytes, **fields):
    return api.upload({"file": SimpleUploadedFile(name, content), **fields})


def test_it_stores_an_image_and_describes_it(api):
    png = prompt_png("reference")
    response = upload(
        api, "reference.png", png, kind="image", model="nano-banana-2", client_request_id="up-1"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert re.fullmatch(r"file_[0-9a-z]{24}", body["id"])
    assert body["object"] == "file"
    assert (body["kind"], body["name"], body["mime_type"]) == (
        "image",
        "reference.png",
        "image/png",
    )
    assert (body["size_bytes"], body["model"], body["client_request_id"]) == (
        len(png),
        "nano-banana-2",
        "up-1",
    )
    assert body["duration_seconds"] is None and body["duration_token"] is None
    assert body["url"] == f"http://testserver/sandbox/api/media/{body['id']}.png"
    assert api.client.get(body["url"]).getvalue() == png
    assert api.get(f"/files/{body['id']}").json() == body


def test_audio_and_video_get_a_duration_and_token(api):
    wav = upload(api, "a.wav", prompt_wav("x"), kind="audio").json()
    assert (wav["mime_type"], wav["duration_seconds"]) == ("audio/wav", 2.0)
    assert wav["duration_token"]
    mp4 = upload(api, "clip.mp4", mp4_bytes(3), kind="video").json()
    assert (mp4["mime_type"], mp4["duration_seconds"]) == ("video/mp4", 3.0)
    webm = upload(api, "clip.webm", SAMPLE_WEBM.read_bytes(), kind="video").json()
    assert webm["mime_type"] == "video/webm" and webm["duration_token"]


def test_a_duration_token_lets_a_generation_use_the_upload(api):
    video = upload(api, "clip.mp4", mp4_bytes(), kind="video", model="wan-2-6").json()
    item = {"url": video["url"], "kind": "video"}
    body = {"model": "wan-2-6", "prompt": "x", "params": {"referenceMediaItems": [item]}}
    assert api.post("/generations", body).status_code == 400
    item["durationToken"] = "forged"
    assert api.post("/generations", body).status_code == 400
    item["durationToken"] = video["duration_token"]
    assert api.post("/generations", body).status_code == 202


def test_a_public_video_url_needs_a_token_the_sandbox_signed(api):
    video = upload(api, "clip.mp4", mp4_bytes(), kind="video").json()
    item = {"url": "https://cdn.example/clip.mp4", "kind": "video", "durationToken": "forged"}
    body = {"model": "wan-2-6", "prompt": "x", "params": {"referenceMediaItems": [item]}}
    response = api.post("/generations", body)
    assert response.status_code == 400
    assert "durationToken" in response.json()["error"]["message"]
    item["durationToken"] = video["duration_token"]
    assert api.post("/generations", body).status_code == 202


def test_a_reference_url_that_cannot_be_parsed_is_validation_failed(api):
    item = {"url": "http://[", "kind": "image"}
    body = {"model": "nano-banana", "prompt": "x", "params": {"referenceMediaItems": [item]}}
    response = api.post("/generations", body)
    assert response.status_code == 400
    assert "is not a URL" in response.json()["error"]["message"]


def test_a_truncated_mp4_header_stores_the_video_without_a_duration(api):
    truncated = struct.pack(">I", 16) + b"ftypisom" + bytes(4) + b"mvhd\x01" + bytes(27)
    response = upload(api, "clip.mp4", truncated, kind="video")
    assert response.status_code == 201
    assert response.json()["duration_seconds"] is None


def test_a_media_name_with_nul_is_not_found(api):
    assert api.client.get("/sandbox/api/media/task_%00.png").status_code == 404
    assert api.client.get("/sandbox/api/media/file_%00.png").status_code == 404


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff\xe0", "image/jpeg"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio/wav"),
        (b"\x00\x00\x00\x14ftypqt  ", "video/quicktime"),
        (b"\x00\x00\x00\x14ftypM4A ", "audio/mp4"),
        (b"\x00\x00\x00\x14ftypisom", "video/mp4"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x82\x84webm", "video/webm"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x82\x88matroska", "video/x-matroska"),
        (b"OggS\x00", "audio/ogg"),
        (b"ID3\x04", "audio/mpeg"),
        (b"\xff\xfb\x90", "audio/mpeg"),
        (b"\xff\xf1\x50", "audio/aac"),
        (b"GIF89a", None),
    ],
)
def test_types_come_from_magic_bytes(head, mime):
    assert detect_mime(head) == mime


def test_the_filename_does_not_decide_the_type(api):
    response = upload(api, "photo.png", b"GIF89a" + bytes(100), kind="image")
    assert response.status_code == 400
    assert "unrecognised format" in response.json()["error"]["message"]
    response = upload(api, "song.mp3", prompt_png("x"), kind="audio")
    assert response.status_code == 400
    assert "content is image/png" in response.json()["error"]["message"]
    assert UploadedFile.objects.count() == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "kind: must be one of image, video, audio"),
        ({"kind": "document"}, "kind: must be one of"),
        ({"kind": "image", "model": "nope"}, "model: unknown model 'nope'"),
        (
            {"kind": "video", "model": "nano-banana"},
            "model nano-banana does not accept video files",
        ),
        ({"kind": "image", "model": "z-image"}, "model z-image does not accept image files"),
        (
            {"kind": "image", "client_request_id": "c" * 129},
            "client_request_id: must be at most 128",
        ),
    ],
)
def test_bad_fields_are_validation_failed(api, fields, message):
    response = upload(api, "a.png", prompt_png("x"), **fields)
    assert response.status_code == 400
    assert error_code(response) == "validation_failed"
    assert message in response.json()["error"]["message"]


def test_a_missing_file_or_a_json_body_is_refused(api):
    response = api.upload({"kind": "image"})
    assert response.status_code == 400
    assert "file: is required" in response.json()["error"]["message"]
    response = api.post("/files", {"kind": "image"})
    assert response.status_code == 400
    assert "multipart/form-data" in response.json()["error"]["message"]


def test_over_the_kind_limit_is_413(api, monkeypatch):
    monkeypatch.setitem(
        choices.FILE_LIMITS, "image", {**choices.FILE_LIMITS["image"], "max_bytes": 1000}
    )
    response = upload(api, "big.png", prompt_png("x") + bytes(2000), kind="image")
    assert response.status_code == 413
    assert error_code(response) == "file_too_large"
    assert "limited to" in response.json()["error"]["message"]
    assert not uploads_dir().exists() or not any(uploads_dir().iterdir())


def test_a_declared_length_over_every_limit_is_413_before_reading(api):
    response = api.client.post(
        "/sandbox/api/v1/files",
        b"",
        content_type="multipart/form-data; boundary=x",
        headers={**api.headers(), "Content-Length": str(200 * 1024 * 1024)},
    )
    assert response.status_code == 413
    assert error_code(response) == "file_too_large"


def test_the_upload_handler_streams_to_disk_and_stops_past_the_limit(rf):
    handler = LimitedUploadHandler(rf.post("/"), max_bytes=10)
    handler.new_file("file", "a.bin", "application/octet-stream", 20)
    assert handler.receive_data_chunk(b"12345", 0) is None
    handler.file.flush()
    assert Path(handler.file.temporary_file_path()).read_bytes() == b"12345"
    with pytest.raises(StopUpload):
        handler.receive_data_chunk(b"123456", 5)
    assert handler.too_large


def test_files_of_other_accounts_and_expired_files_are_not_found(api):
    file_id = upload(api, "a.png", prompt_png("x"), kind="image").json()["id"]
    response = Api(issue_key()).get(f"/files/{file_id}")
    assert response.status_code == 404
    assert error_code(response) == "not_found"
    UploadedFile.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api.get(f"/files/{file_id}").status_code == 404
    assert api.client.get(f"/sandbox/api/media/{file_id}.png").status_code == 404


def test_a_key_without_files_create_cannot_upload(db):
    api = Api(issue_key(scopes=["files:read"]))
    response = upload(api, "a.png", prompt_png("x"), kind="image")
    assert response.status_code == 403
    assert error_code(response) == "api_scope_denied"
