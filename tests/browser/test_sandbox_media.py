"""The sandbox's result media really play: Debian's chromium decodes the PNG, WAV and WebM."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Browser

from rivya_dashboard.sandbox.keys import issue_key
from rivya_dashboard.sandbox.models import Generation
from tests.sandbox.conftest import Api

LOAD_MEDIA = """async ([image, audio, video]) => {
    const loaded = (element, event) => new Promise((resolve, reject) => {
        element.addEventListener(event, () => resolve(element));
        element.addEventListener("error", () => reject(new Error("cannot decode " + element.src)));
    });
    const img = document.createElement("img");
    img.src = image;
    const sound = document.createElement("audio");
    sound.src = audio;
    const clip = document.createElement("video");
    clip.muted = true;
    clip.src = video;
    await Promise.all(
        [loaded(img, "load"), loaded(sound, "loadeddata"), loaded(clip, "loadeddata")]
    );
    await clip.play();
    return {
        image: [img.naturalWidth, img.naturalHeight],
        audio: sound.duration,
        video: [clip.videoWidth, clip.videoHeight, clip.duration],
    };
}"""


def result_url(api: Api, model: str) -> str:
    task_id = api.post("/generations", {"model": model, "prompt": "play me"}).json()["id"]
    Generation.objects.filter(public_id=task_id).update(
        created_at=timezone.now() - timedelta(minutes=1)
    )
    return api.get(f"/generations/{task_id}").json()["result"]["primary_url"]


@pytest.mark.browser
def test_chromium_decodes_every_kind_of_result(browser: Browser, live_server, transactional_db):
    api = Api(issue_key())
    urls = [
        result_url(api, model).replace("http://testserver", live_server.url)
        for model in ("z-image", "suno-music", "sora-2")
    ]
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live_server.url}/sandbox/api/v1/models")
    found = page.evaluate(LOAD_MEDIA, urls)
    context.close()
    assert found["image"] == [256, 256]
    assert found["audio"] == pytest.approx(2.0, abs=0.05)
    assert found["video"][:2] == [160, 90]
    assert found["video"][2] == pytest.approx(2.0, abs=0.1)
