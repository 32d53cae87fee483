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


# Named sizes of the image models' `image_size` param, as width:height.
NAMED_RATIOS = {"square": (1, 1), "square_hd": (1, 1)}
# The longest side per `resolution`: small, so results stay quick to draw, but still distinct.
LONG_SIDE = {"1K": IMAGE_SIZE, "2K": IMAGE_SIZE * 3 // 2, "4K": IMAGE_SIZE * 2}


def ratio_of(value: object) -> tuple[int, int] | None:
    """ "16:9" → (16, 9); "landscape_16_9" → (16, 9); "portrait_4_3" → (3, 4)."""
    text = str(value or "")
    if text in NAMED_RATIOS:
        return NAMED_RATIOS[text]
    orientation, _, rest = text.partition("_")
    if orientation in ("landscape", "portrait"):
        wide, _, high = rest.partition("_")
        if wide.isdigit() and high.isdigit():
            pair = (int(wide), int(high))
            return pair if orientation == "landscape" else (pair[1], pair[0])
    wide, colon, high = text.partition(":")
    if colon and wide.isdigit() and high.isdigit() and int(wide) and int(high):
        return int(wide), int(high)
    return None


def image_shape(params: dict) -> tuple[int, int]:
    """The result's width and height from the requested aspect ratio or size and resolution."""
    ratio = next(
        (
            found
            for name in ("aspect_ratio", "size", "image_size")
            if (found := ratio_of(params.get(name)))
        ),
        (1, 1),
    )
    long_side = LONG_SIDE.get(str(params.get("resolution")), IMAGE_SIZE)
    if params.get("image_size") == "square_hd":
        long_side = LONG_SIDE["2K"]
    wide, high = ratio
    scale = long_side / max(wide, high)
    return max(1, round(wide * scale)), max(1, round(high * scale))


@lru_cache(maxsize=64)
def prompt_png(prompt: str, width: int = IMAGE_SIZE, height: int = IMAGE_SIZE) -> bytes:
    """An RGB pattern of the requested shape: colours, stripe angle and ring spacing all come
    from the prompt."""
    digest = hashlib.sha256(prompt.encode()).digest()
    first, second = digest[0:3], digest[3:6]
    angle = digest[6] / 255 * math.pi
    ring = 8 + digest[7] % 40
    dx, dy = math.cos(angle), math.sin(angle)
    rows = bytearray()
    centre_x, centre_y = width / 2, height / 2
    for y in range(height):
        rows.append(0)
        for x in range(width):
            stripe = int((x * dx + y * dy) / 16) % 2
            distance = math.hypot(x - centre_x, y - centre_y)
            colour = first if stripe ^ (int(distance / ring) % 2) else second
            rows += bytes(colour)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
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
        shape = image_shape(generation.params or {})
        return HttpResponse(prompt_png(generation.prompt, *shape), content_type="image/png")
    if generation.category == "audio" and extension == "wav":
        return HttpResponse(prompt_wav(generation.prompt), content_type="audio/wav")
    if generation.category == "video" and extension == "webm":
        return FileResponse(SAMPLE_VIDEO.open("rb"), content_type="video/webm")
    raise Http404("No such result file.")
