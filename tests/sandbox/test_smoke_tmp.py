from django.core.files.uploadedfile import SimpleUploadedFile
from tests.sandbox.conftest import Api
from rivya_dashboard.sandbox.media import prompt_png, prompt_wav


def test_it_smoke(api, db):
    r = api.post("/chat/completions", {"model": "gpt-5-2-chat", "message": "hello there"})
    assert r.status_code == 200, r.content
    print(r.json())
    r = api.post("/chat/completions/stream", {"model": "gpt-5-2-chat", "message": "hello there", "session_id": r.json()["session_id"]})
    assert r.status_code == 200, r.content
    print(b"".join(r.streaming_content).decode()[:2000])
    png = prompt_png("a cat")
    r = api.upload({"file": SimpleUploadedFile("x.png", png, "image/png"), "kind": "image"})
    assert r.status_code == 201, r.content
    print(r.json())
    r = api.upload({"file": SimpleUploadedFile("x.wav", prompt_wav("a"), "audio/wav"), "kind": "audio"})
    print(r.json())
    r = api.get("/chat/sessions")
    print(r.json())
