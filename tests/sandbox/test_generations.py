"""POST /generations and GET /generations/{taskId} (§5, §6), with real result media."""

import re
import struct
import zlib
from datetime import timedelta

import pytest
from django.utils import timezone

from rivya_dashboard.sandbox.generations import generation_finished
from rivya_dashboard.sandbox.keys import issue_key
from rivya_dashboard.sandbox.models import Account, Generation
from tests.sandbox.conftest import Api, error_code


def age(task_id: str, seconds: float) -> None:
    """Pretend the task was submitted `seconds` ago."""
    Generation.objects.filter(public_id=task_id).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_it_accepts_a_generation_and_reserves_its_credits(api):
    response = api.post(
        "/generations",
        {
            "model": "z-image",
            "prompt": "a red fox",
            "params": {"aspect_ratio": "16:9"},
            "client_request_id": "order-1",
        },
    )
    assert response.status_code == 202
    body = response.json()
    assert re.fullmatch(r"task_[0-9a-z]{24}", body["id"])
    assert body["status"] == "queued"
    assert (body["model"], body["reserved_credits"], body["final_credits"]) == ("z-image", 1, 0)
    assert body["result"] is None and body["error"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["created_at"])
    assert Account.objects.get().credits == 999


def test_the_lifecycle_follows_elapsed_time(api):
    task_id = api.post("/generations", {"model": "z-image", "prompt": "fox"}).json()["id"]
    assert api.get(f"/generations/{task_id}").json()["status"] == "queued"
    age(task_id, 3)
    assert api.get(f"/generations/{task_id}").json()["status"] == "processing"
    age(task_id, 7.5)
    done = api.get(f"/generations/{task_id}").json()
    assert done["status"] == "succeeded"
    assert done["final_credits"] == 1
    assert done["result"]["primary_url"] == done["result"]["urls"][0]
    assert done["result"]["primary_url"].startswith("http://testserver/sandbox/api/media/task_")
    assert Account.objects.get().credits == 999


def test_the_clock_speed_compresses_the_lifecycle(api, sandbox_settings):
    sandbox_settings.clock_speed = 100
    sandbox_settings.save()
    task_id = api.post("/generations", {"model": "kling-2-6", "prompt": "waves"}).json()["id"]
    age(task_id, 0.25)  # 22 sandbox seconds for a video
    assert api.get(f"/generations/{task_id}").json()["status"] == "succeeded"


def test_a_fail_marker_fails_the_task_and_refunds(api):
    task_id = api.post("/generations", {"model": "nano-banana", "prompt": "x [[fail]]"}).json()[
        "id"
    ]
    assert Account.objects.get().credits == 997
    age(task_id, 60)
    body = api.get(f"/generations/{task_id}").json()
    assert body["status"] == "failed"
    assert body["error"] == {"code": "generation_failed", "message": "The generation failed."}
    assert body["final_credits"] == 0 and body["result"] is None
    assert Account.objects.get().credits == 1000
    api.get(f"/generations/{task_id}")
    assert Account.objects.get().credits == 1000, "refunded once only"


def test_the_failure_rate_fails_tasks(api, sandbox_settings):
    sandbox_settings.failure_rate = 1.0
    sandbox_settings.save()
    task_id = api.post("/generations", {"model": "z-image", "prompt": "ok"}).json()["id"]
    age(task_id, 60)
    assert api.get(f"/generations/{task_id}").json()["status"] == "failed"


def test_the_finished_signal_is_sent_exactly_once(api):
    seen = []

    def receiver(sender, generation, **kwargs):
        seen.append(generation.status)

    generation_finished.connect(receiver)
    try:
        task_id = api.post("/generations", {"model": "z-image", "prompt": "ok"}).json()["id"]
        age(task_id, 60)
        api.get(f"/generations/{task_id}")
        api.get(f"/generations/{task_id}")
    finally:
        generation_finished.disconnect(receiver)
    assert seen == ["succeeded"]


def png_size_and_pixels(data: bytes) -> tuple[tuple[int, int], bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    idat = data.index(b"IDAT")
    length = struct.unpack(">I", data[idat - 4 : idat])[0]
    return (width, height), zlib.decompress(data[idat + 4 : idat + 4 + length])


def finished_media(api: Api, model: str, prompt: str, params: dict | None = None):
    body = {"model": model, "prompt": prompt, **({"params": params} if params else {})}
    task_id = api.post("/generations", body).json()["id"]
    age(task_id, 60)
    url = api.get(f"/generations/{task_id}").json()["result"]["primary_url"]
    return api.client.get(url.removeprefix("http://testserver"))


def test_image_results_are_real_pngs_that_differ_by_prompt(api):
    first = finished_media(api, "z-image", "a red fox")
    second = finished_media(api, "z-image", "a blue whale")
    assert first["Content-Type"] == "image/png"
    size, pixels = png_size_and_pixels(first.content)
    assert size == (256, 256)
    assert len(pixels) == 256 * (1 + 256 * 3)
    assert png_size_and_pixels(second.content)[1] != pixels


@pytest.mark.parametrize(
    ("model", "params", "size"),
    [
        ("z-image", {"aspect_ratio": "16:9"}, (256, 144)),
        ("z-image", {"aspect_ratio": "9:16"}, (144, 256)),
        ("4o-image", {"size": "3:2"}, (256, 171)),
        ("seedream-3-0", {"image_size": "portrait_4_3"}, (192, 256)),
        ("nano-banana-2", {"aspect_ratio": "21:9", "resolution": "2K"}, (384, 165)),
    ],
)
def test_image_results_follow_the_requested_aspect_ratio_and_size(api, model, params, size):
    result = finished_media(api, model, "a lighthouse", params)
    assert png_size_and_pixels(result.content)[0] == size


def test_audio_results_are_wav_and_video_results_are_webm(api):
    audio = finished_media(api, "suno-music", "a tune")
    assert audio["Content-Type"] == "audio/wav"
    assert audio.content[:4] == b"RIFF" and audio.content[8:12] == b"WAVE"
    video = finished_media(api, "sora-2", "a boat")
    assert video["Content-Type"] == "video/webm"
    assert b"".join(video.streaming_content)[:4] == b"\x1a\x45\xdf\xa3"


def test_unfinished_results_are_not_served(api):
    task_id = api.post("/generations", {"model": "z-image", "prompt": "x"}).json()["id"]
    assert api.client.get(f"/sandbox/api/media/{task_id}.png").status_code == 404
    assert api.client.get("/sandbox/api/media/file_nothing.png").status_code == 404


def test_another_accounts_task_is_not_found(api):
    task_id = api.post("/generations", {"model": "z-image", "prompt": "x"}).json()["id"]
    response = Api(issue_key()).get(f"/generations/{task_id}")
    assert response.status_code == 404
    assert error_code(response) == "not_found"
    assert api.get("/generations/task_unknown").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "model: is required"),
        ({"model": "no-such-model", "prompt": "x"}, "model: unknown model 'no-such-model'"),
        ({"model": "gpt-5-2-chat", "prompt": "x"}, "model: gpt-5-2-chat is a chat model"),
        ({"model": "demo-coming-soon-video", "prompt": "x"}, "coming_soon"),
        ({"model": "demo-studio-only-image", "prompt": "x"}, "studio_only"),
        ({"model": "z-image"}, "prompt: is required"),
        ({"model": "elevenlabs-dialogue-v3"}, "prompt: send a prompt or params"),
        (
            {"model": "demo-requires-files-audio", "prompt": "x"},
            "demo-requires-files-audio needs an uploaded audio file",
        ),
        ({"model": "z-image", "prompt": "x" * 1001}, "prompt: must be at most 1000"),
        ({"model": "z-image", "prompt": 5}, "prompt: must be of type string"),
        ({"model": "z-image", "prompt": "x", "files": []}, "files: is not a known field"),
        ({"model": "z-image", "prompt": "x", "params": []}, "params: must be of type object"),
        (
            {"model": "z-image", "prompt": "x", "params": {"size": "1:1"}},
            "params.size: is not a parameter",
        ),
        (
            {"model": "z-image", "prompt": "x", "params": {"aspect_ratio": "2:1"}},
            "params.aspect_ratio: must be one of",
        ),
        (
            {"model": "kling-2-6", "prompt": "x", "params": {"duration": 5}},
            "params.duration: must be one of 5, 10",
        ),
        (
            {"model": "seedream-3-0", "prompt": "x", "params": {"guidance_scale": 11}},
            "params.guidance_scale: must be at most 10",
        ),
        (
            {"model": "seedream-3-0", "prompt": "x", "params": {"guidance_scale": "2"}},
            "params.guidance_scale: must be a number",
        ),
        (
            {"model": "seedream-3-0", "prompt": "x", "params": {"seed": True}},
            "params.seed: must be a number",
        ),
        (
            {"model": "runway", "prompt": "x", "params": {"waterMark": 1}},
            "params.waterMark: must be a string",
        ),
        ({"model": "sora-watermark-remover"}, "params: is required"),
        (
            {"model": "sora-watermark-remover", "params": {"upload_method": "s3"}},
            "params.video_url: is required",
        ),
        (
            {"model": "elevenlabs-dialogue-v3", "params": {"dialogue": [{"voice": "Adam"}]}},
            "params.dialogue[0]",
        ),
        (
            {"model": "z-image", "prompt": "x", "client_request_id": "c" * 129},
            "client_request_id: must be at most 128",
        ),
        (
            {
                "model": "z-image",
                "prompt": "x",
                "params": {"referenceMediaItems": [{"url": "https://a/b.png", "kind": "image"}]},
            },
            "z-image takes no reference media",
        ),
        (
            {
                "model": "sora-2",
                "prompt": "x",
                "params": {
                    "referenceMediaItems": [{"url": "https://a/b.png", "kind": "image"}] * 2
                },
            },
            "at most 1 items",
        ),
        (
            {
                "model": "sora-2",
                "prompt": "x",
                "params": {"referenceMediaItems": [{"url": "https://a/b.mp3", "kind": "audio"}]},
            },
            "[0].kind: sora-2 accepts image",
        ),
        (
            {
                "model": "wan-2-6",
                "prompt": "x",
                "params": {"referenceMediaItems": [{"url": "https://a/b.mp4", "kind": "video"}]},
            },
            "durationToken",
        ),
        (
            {
                "model": "sora-2",
                "prompt": "x",
                "params": {"referenceMediaItems": [{"kind": "image"}]},
            },
            "referenceMediaItems[0].url: is required",
        ),
        (
            {
                "model": "sora-2",
                "prompt": "x",
                "params": {
                    "referenceMediaItems": [
                        {"url": "http://testserver/sandbox/api/media/file_x.png", "kind": "image"}
                    ]
                },
            },
            "is not a current upload",
        ),
    ],
)
def test_invalid_generations_name_the_field_and_change_nothing(api, body, field):
    response = api.post("/generations", body)
    assert response.status_code == 400, response.content
    assert error_code(response) == "validation_failed"
    assert field in response.json()["error"]["message"]
    assert Generation.objects.count() == 0
    assert Account.objects.get().credits == 1000


@pytest.mark.parametrize("model", ["z-image", "elevenlabs-sound-effect-v2"])
def test_a_prompt_of_only_whitespace_is_refused_with_a_request_id(api, model):
    response = api.post("/generations", {"model": model, "prompt": " \n\t "})
    assert response.status_code == 400
    assert error_code(response) == "validation_failed"
    assert "prompt: must contain more than whitespace" in response.json()["error"]["message"]
    assert response.json()["error"]["requestId"].startswith("req_")
    assert Generation.objects.count() == 0
    assert Account.objects.get().credits == 1000


def test_valid_params_of_every_type_are_accepted(api):
    ok = [
        {
            "model": "seedream-3-0",
            "prompt": "x",
            "params": {"guidance_scale": 2.5, "seed": 7, "image_size": "square"},
        },
        {
            "model": "sora-watermark-remover",
            "params": {"video_url": "https://v/x.mp4", "upload_method": "oss"},
        },
        {
            "model": "elevenlabs-dialogue-v3",
            "params": {"dialogue": [{"voice": "Adam", "text": "Hi"}]},
        },
        {
            "model": "sora-2",
            "prompt": "x",
            "params": {
                "referenceMediaItems": [
                    {
                        "url": "https://a/b.png",
                        "kind": "image",
                        "name": "b.png",
                        "mimeType": "image/png",
                    }
                ]
            },
        },
    ]
    for body in ok:
        response = api.post("/generations", body)
        assert response.status_code == 202, (body, response.content)


def test_a_short_wallet_gets_402_and_no_task(db):
    api = Api(issue_key(credits=2))
    response = api.post("/generations", {"model": "nano-banana", "prompt": "x"})
    assert response.status_code == 402
    assert error_code(response) == "insufficient_credits"
    assert Generation.objects.count() == 0
    assert Account.objects.get().credits == 2
