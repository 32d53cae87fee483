"""Playable result media and uploaded files, served by the sandbox under /sandbox/api/media/.

Results are derived from the prompt so two prompts give visibly (and audibly) different
outputs: a PNG colour pattern written with zlib, a WAV melody, and a committed 2 s WebM
(VP9 + Opus) sample that chromium plays. Media URLs need no key, like a provider's CDN URLs.
"""

import array
import hashlib
import math
import struct
import sys
import zlib
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_safe

from rivya_dashboard.sandbox.models import Generation, UploadedFile

SAMPLE_VIDEO = Path(__file__).resolve().parent / "data" / "sample.webm"
IMAGE_SIZE = 256
SAMPLE_RATE = 22050
NOTE_SECONDS = 0.25
NOTES = 8


def uploads_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "sandbox" / "uploads"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


@lru_cache(maxsize=64)
def prompt_png(prompt: str) -> bytes:
    """A 256x256 RGB pattern: colours, stripe angle and ring spacing all come from the prompt."""
    digest = hashlib.sha256(prompt.encode()).digest()
    first, second = digest[0:3], digest[3:6]
    angle = digest[6] / 255 * math.pi
    ring = 8 + digest[7] % 40
    dx, dy = math.cos(angle), math.sin(angle)
    rows = bytearray()
    centre = IMAGE_SIZE / 2
    for y in range(IMAGE_SIZE):
        rows.append(0)
        for x in range(IMAGE_SIZE):
            stripe = int((x * dx + y * dy) / 16) % 2
            distance = math.hypot(x - centre, y - centre)
            colour = first if stripe ^ (int(distance / ring) % 2) else second
            rows += bytes(colour)
    header = struct.pack(">IIBBBBB", IMAGE_SIZE, IMAGE_SIZE, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(bytes(rows), 6))
        + png_chunk(b"IEND", b"")
    )


@lru_cache(maxsize=64)
def prompt_wav(prompt: str) -> bytes:
    """A 2 s mono melody of eight notes picked from a pentatonic scale by the prompt's hash."""
    digest = hashlib.sha256(prompt.encode()).digest()
    scale = [261.63, 293.66, 329.63, 392.00, 440.00, 523.25, 587.33, 659.25]
    samples = array.array("h")
    per_note = int(SAMPLE_RATE * NOTE_SECONDS)
    for note in range(NOTES):
        frequency = scale[digest[note] % len(scale)]
        for index in range(per_note):
            envelope = min(1.0, index / 200, (per_note - index) / 800)
            value = math.sin(2 * math.pi * frequency * index / SAMPLE_RATE)
            samples.append(int(9000 * envelope * value))
    if sys.byteorder == "big":
        samples.byteswap()
    return wav_bytes(samples.tobytes())


def wav_bytes(pcm: bytes) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 1, SAMPLE_RATE, SAMPLE_RATE * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(pcm))
        + b"WAVEfmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(pcm))
        + pcm
    )


@login_not_required
@require_safe
def serve(request: HttpRequest, name: str) -> HttpResponse:
    if not settings.RIVYA_SANDBOX:
        raise Http404("The sandbox is switched off.")
    if "\x00" in name:
        # PostgreSQL text cannot hold NUL: no stored name has one.
        raise Http404("No such sandbox file.")
    stem, _, extension = name.partition(".")
    if stem.startswith("task_"):
        return generation_media(stem, extension)
    upload = UploadedFile.objects.filter(storage_name=name, expires_at__gt=timezone.now()).first()
    path = uploads_dir() / name
    if upload is None or not path.is_file():
        raise Http404("No such sandbox upload.")
    return FileResponse(path.open("rb"), content_type=upload.mime_type)


def generation_media(public_id: str, extension: str) -> HttpResponse:
    generation = Generation.objects.filter(
        public_id=public_id, status=Generation.Status.SUCCEEDED
    ).first()
    if generation is None:
        raise Http404("No finished sandbox generation has this result.")
    if generation.category == "image" and extension == "png":
        return HttpResponse(prompt_png(generation.prompt), content_type="image/png")
    if generation.category == "audio" and extension == "wav":
        return HttpResponse(prompt_wav(generation.prompt), content_type="audio/wav")
    if generation.category == "video" and extension == "webm":
        return FileResponse(SAMPLE_VIDEO.open("rb"), content_type="video/webm")
    raise Http404("No such result file.")
